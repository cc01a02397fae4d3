FROM busybox
RUN echo one \
    && echo two \
# a comment inside the continuation is skipped
    && echo three

RUN echo four \

    && echo five
run echo lower-case keyword
  RUN   echo leading whitespace   
RUN echo trailing-space-after-backslash \   
    done
LABEL a=1 \
      b=2
