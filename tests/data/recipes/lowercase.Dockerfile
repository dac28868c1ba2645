from debian:12-slim
env DEBIAN_FRONTEND=noninteractive
run apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
workdir /data
copy entry.sh /usr/local/bin/entry.sh
cmd ["/usr/local/bin/entry.sh"]
