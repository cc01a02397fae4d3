FROM busybox
WORKDIR --chown=1 /x
