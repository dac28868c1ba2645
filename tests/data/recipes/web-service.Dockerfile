# syntax=docker/dockerfile:1
ARG BASE=nginx:1.25-alpine
FROM ${BASE}
MAINTAINER web team <web@example.org>
ARG VERSION=1.0
ENV SITE_ROOT /usr/share/nginx/html
COPY --chown=nginx:nginx site/ ${SITE_ROOT}/
ADD nginx.conf /etc/nginx/nginx.conf
EXPOSE 8080
USER nginx
HEALTHCHECK CMD wget -q -O- http://localhost:8080/ || exit 1
RUN ["nginx", "-t"]
ENTRYPOINT nginx -g "daemon off;"
