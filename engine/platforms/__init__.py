"""Platform adapters for creator tracking (one module per platform), and the caller that
runs them with breakers, quotas and retries (the mock platform's server is
engine.mock_platform).

Modules:

- `base.py`: The one small interface every platform adapter implements, and what it returns.
- `caller.py`: Calls adapters the resilient way: breaker, shared quota, bounded concurrency,
  retries.
- `config.py`: Reading the tracking settings' quota strings (the settings are
  `Settings.tracking`).
- `instagram.py`: Instagram Graph API business discovery: another professional account's public
  counts.
- `mock.py`: Mockstagram adapter: batch lookup with per-creator ETags, or a single conditional
  GET.
- `registry.py`: Which adapter serves which platform, built from the environment's credentials.
- `stored_credentials.py`: Tracking credentials from the encrypted store
  (storage.queries.tracking_credentials), for a deployment that keeps YOUTUBE_API_KEY,
  X_BEARER_TOKEN, INSTAGRAM_ACCESS_TOKEN or INSTAGRAM_USER_ID there rather than in the
  environment.
- `x.py`: X API v2 user lookup: `GET /2/users?ids=…&user.fields=public_metrics`, up to 100 ids.
- `youtube.py`: YouTube Data API v3: `channels.list?part=statistics`, up to 50 channel ids per
  call.
"""
