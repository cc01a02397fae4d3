FROM busybox
HEALTHCHECK --timeout=5 CMD true
