FROM scratch
COPY busybox /bin/busybox
ENV GREETING=hello PATH=/bin
CMD ["/bin/busybox", "echo", "built"]
