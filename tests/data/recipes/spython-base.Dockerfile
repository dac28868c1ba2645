FROM busybox:1.36 AS spython-base
COPY payload.sh /payload.sh
ENV MODE=batch
RUN chmod +x /payload.sh
CMD /payload.sh
