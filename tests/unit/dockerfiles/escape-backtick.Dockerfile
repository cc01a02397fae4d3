# escape=`
FROM mcr.example.com/windows
COPY testfile.txt c:\
RUN dir c:\ `
    && echo done
ENV PATH="C:\Program Files`"
