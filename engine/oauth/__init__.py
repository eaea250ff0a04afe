"""Connecting platform accounts with OAuth 2.0 from a terminal, and keeping their tokens alive.

- `providers`: one table per platform (endpoints, scopes, flow); client ids from `settings`.
- `device`: the device authorization grant (RFC 8628, and Facebook Login for Devices).
- `pkce`: the authorization code flow with PKCE (X): show a URL, take back the redirect.
- `tokens`: token endpoint calls (exchange, refresh, revoke) and their errors.
- `connect`: a finished grant becomes a stored connection (identity lookup, encrypted tokens).
- `refresh`: refresh before expiry, exactly once per token across replicas; the publish gate.

Plain httpx, no OAuth library: the flows are a few form POSTs each, and none of the client
libraries at hand (authlib, oauthlib) implements the device grant's polling (`slow_down`,
`authorization_pending`) or Facebook's dialect of it; wrapping them would cost more code than
these modules are.
"""
