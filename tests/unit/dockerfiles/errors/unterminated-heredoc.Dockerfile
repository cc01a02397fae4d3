FROM busybox
RUN <<EOF
echo
