FROM busybox
COPY --form=a b c
