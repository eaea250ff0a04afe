# syntax=docker/dockerfile:1
# One image for every process of the Procfile: release (migrate), engine, api.
#   docker build -t creatordeck .
#   docker run --env-file .env creatordeck engine

FROM python:3.11-slim AS build
WORKDIR /src
# Same installer version as .ci/run: the image installs the tree uv.lock pins, nothing newer.
RUN pip install --no-cache-dir build==1.* uv==0.13.8
COPY pyproject.toml uv.lock README.md ./
RUN uv export --frozen --no-emit-project --no-hashes --quiet --output-file /dist/requirements.txt
COPY console console
COPY engine engine
COPY storage storage
COPY migrations migrations
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 creatordeck
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir -r /tmp/dist/requirements.txt \
    && pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
    && rm -r /tmp/dist
USER creatordeck
WORKDIR /home/creatordeck
# prod: missing DATABASE_URL / REDIS_URL are an error, never an embedded server.
ENV ENV=prod PYTHONUNBUFFERED=1
# 8000: the api (--host 0.0.0.0). 9108: the engine's /metrics, on loopback unless METRICS_HOST
# opens it (compose.yaml sets METRICS_HOST=0.0.0.0 for its engine, scraped from another container).
EXPOSE 8000 9108
# tini forwards SIGTERM to creatordeck, which drains within SHUTDOWN_GRACE_S (25 s < 30 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "creatordeck"]
CMD ["engine"]
