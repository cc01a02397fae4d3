FROM busybox
CMD [1, 2]
