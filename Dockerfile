# Ballast: one process serving webhooks, the JSON API, OFREP and metrics.
#
# The base is pinned by digest: python:3.11-slim-bookworm (Python 3.11.16, Debian bookworm),
# the multi-platform index built 2026-09-19, as listed in docker-library/repo-info
# (repos/python/remote/3.11-slim-bookworm.md at commit 40cdaf34215d). To move it forward:
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
# and put the new digest in PYTHON_IMAGE below, then rebuild.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# Every dependency at the version and hash uv.lock pins (requirements/runtime.txt is its export).
COPY requirements/runtime.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes --prefix=/install -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY actions ./actions
# The base image ships setuptools and wheel, so building needs nothing unpinned from the index.
RUN pip install --no-cache-dir --no-deps --no-build-isolation --prefix=/install .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BALLAST_DATABASE_URL=sqlite:////var/lib/ballast/ballast.db \
    BALLAST_RUNBOOKS=/etc/ballast/runbooks \
    BALLAST_LOG_FORMAT=json
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/ballast --create-home ballast \
    && mkdir -p /etc/ballast \
    && chown ballast /var/lib/ballast
COPY runbooks /etc/ballast/runbooks
USER ballast
WORKDIR /var/lib/ballast
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
CMD ["ballast", "serve", "--host", "0.0.0.0", "--port", "8080"]
