FROM golang:1.22 AS build
WORKDIR /src
COPY main.go /src/main.go
RUN CGO_ENABLED=0 go build -o /out/hello /src/main.go

FROM alpine:3.19 AS runtime
COPY --from=build /out/hello /usr/local/bin/hello
ENV GREETING=hello
ENTRYPOINT ["/usr/local/bin/hello"]
