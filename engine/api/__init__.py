"""The HTTP api, its own process (`creatordeck api`, one per core): assignment and events
for the mobile app, metrics reads, `/health` and Prometheus `/metrics`.

Never imports the console.

Modules:

- `app.py`: The ASGI app: `create_app(settings)`; uvicorn runs it (see `engine.api.serve`).
- `auth.py`: The dashboard token: `x-dashboard-token` compared in constant time with
  DASHBOARD_TOKEN.
- `context.py`: What every request handler shares: settings, the database, Redis, the definition
  cache.
- `limits.py`: What a client can make the api hold in memory, and what it can make the api say
  back.
- `routes_assignment.py`: `POST /v1/assignment`: the sticky variant of a unit in running
  experiments.
- `routes_events.py`: `POST /v1/events`: a batch of app events, stored once each, enriched with
  assignments.
- `routes_health.py`: `GET /health`: can this api reach Postgres and Redis?
- `routes_metrics.py`: Metrics reads, from the rollup tables only: a public summary and
  token-guarded details.
- `schemas.py`: Request and response bodies of the API, with the limits the OpenAPI document
  states.
- `serve.py`: `creatordeck api`: uvicorn serving the app, JSON logs, SIGTERM-clean.
"""
