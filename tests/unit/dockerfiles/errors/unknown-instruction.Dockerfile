FROM busybox

# comment
RUN true


RUNN echo
