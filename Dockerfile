# OS1 hub: one node. Several nodes share Redis: set OS1_REDIS_URL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY clients ./clients
COPY personas ./personas
RUN pip install . && useradd --system --uid 10001 --home-dir /data os1 && mkdir -p /data && chown os1 /data

# Bind all interfaces inside the container; keep the secret and data on a volume.
ENV OS1_HOST=0.0.0.0 \
    OS1_PORT=8080 \
    OS1_DATA_DIR=/data \
    OS1_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
USER os1

HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"

# SIGTERM drains: clients get close 1001 and reconnect elsewhere.
STOPSIGNAL SIGTERM
CMD ["os1", "serve"]
