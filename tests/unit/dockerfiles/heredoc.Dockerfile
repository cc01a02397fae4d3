FROM busybox
RUN <<EOF
echo hello
echo world
EOF
RUN <<-EOT cat > /file
	tab-indented
	EOT
RUN cat <<A /dev/stdin <<"B"
from a $HOME
A
from b $HOME
B
COPY <<EOF /etc/motd
welcome
EOF
COPY <<one <<two /dir/
1
one
2
two
RUN ["echo", "<<EOF"]
ONBUILD RUN <<X
echo later
X
