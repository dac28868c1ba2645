# A small Python service, the shape most projects publish
FROM python:3.11-slim
LABEL maintainer="ops@example.org" org.opencontainers.image.source="https://example.org/app"
ENV PIP_NO_CACHE_DIR=1 \
    APP_HOME=/opt/app
WORKDIR /opt/app
COPY requirements.txt /opt/app/requirements.txt
RUN pip install -r requirements.txt && \
    useradd --create-home app
COPY app.py /opt/app/app.py
ENTRYPOINT ["python", "/opt/app/app.py"]
CMD ["--serve"]
