# Ballast: one process serving webhooks, the JSON API, OFREP and metrics.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY actions ./actions
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
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
