FROM ubuntu:22.04 AS spython-base
RUN apt-get update && apt-get install -y gcc
COPY hello.c /src/hello.c
RUN gcc -O2 -o /src/hello /src/hello.c

FROM ubuntu:22.04 AS final
COPY --from=spython-base /src/hello /usr/bin/hello
CMD ["/usr/bin/hello"]
