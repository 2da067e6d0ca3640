# syntax=docker/dockerfile:1
# Groundstation in a container (README "Deploying"). Build from the repository root:
#   docker build -t groundstation .
# Not built where it was written (no container engine there): minimal and conventional.

# Build stage: the project's wheel and the wheels of its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY app ./app
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: the installed wheels only, run as an unprivileged user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GROUNDSTATION_DATA_DIR=/data \
    GROUNDSTATION_HOST=0.0.0.0 \
    GROUNDSTATION_PORT=3000
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels groundstation
RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home groundstation \
    && mkdir /data && chown groundstation:groundstation /data && chmod 0700 /data
USER groundstation
WORKDIR /data
VOLUME /data
EXPOSE 3000
# 200 from /api/health, or the check fails (urllib raises on errors and on 503).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('GROUNDSTATION_PORT', '3000'), timeout=4)"
ENTRYPOINT ["groundstation"]
CMD ["serve"]
