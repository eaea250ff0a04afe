"""Mockstagram: a loopback platform API for the demo, the tests and the benchmarks.

`app.create_app(MockConfig(...))` builds the ASGI app; `creatordeck mockstagram` serves it.
API (all JSON; `Authorization: Bearer <token>` names the token for rate limits and 401s):

- `GET  /v1/users/{id}`: one account's public stats; `ETag`, `If-None-Match` → 304.
- `POST /v1/users/batch` `{"ids": [...], "etags": {id: etag}}` (at most `max_batch` ids):
  `{"data": [changed accounts], "not_modified": [ids], "errors": [{"id", "status", "message"}]}`.
- `GET  /health`; `GET /admin/stats` (request counters); `GET|PUT /admin/faults` (read or
  change fault injection while running); `POST /admin/accounts/{id}/gone|restore`.

Post metrics (`metrics.py`): `GET /publishing/v1/{account}/metrics?ids=a,b` (at most 50 ids)
answers growing views/likes/comments/shares for the posts the publishing endpoints stored.

Media (`media.py`, `media_graph.py`): X's chunked upload and posts under `/x`, YouTube's
resumable upload under `/youtube`, Instagram containers and Facebook Page photos/videos under
`/graph` — the real publishers, pointed at these prefixes, run their real media paths; the
mock's own publishing endpoints take an upload too (`POST /publishing/v1/{account}/media`).

OAuth (device flow, PKCE, rotating refresh tokens, revoke, expiry) is `oauth.py`; the
publishing endpoints answer 401 to a token it issued that expired or was revoked.

Stats grow deterministically per account (`growth.stats_at`), changing once per `slot_s`.
"""
