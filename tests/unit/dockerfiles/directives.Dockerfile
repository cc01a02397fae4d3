#SYNTAX = docker/dockerfile:1.7
# check=skip=JSONArgsRecommended
# escape=\
# not a directive any more
# escape=`
FROM busybox
RUN echo a \
  b
