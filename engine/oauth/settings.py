"""OAuth client credentials and refresh timing, from the environment (and `.env`) only.

Client ids and secrets are never stored in the database and never logged: secrets are
`SecretStr`. Flat environment variable names (README's configuration table); this section can
hang in the settings tree as `Settings.oauth` unchanged.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OAuthSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", hide_input_in_errors=True, use_attribute_docstrings=True
    )

    youtube_client_id: str | None = None
    """Google OAuth client id of type "TVs and Limited Input devices" (device flow)."""
    youtube_client_secret: SecretStr | None = None
    """Its client secret (Google's device flow sends it with every token request)."""
    facebook_app_id: str | None = None
    """Facebook app id (Facebook Pages and Instagram business accounts, Login for Devices)."""
    facebook_client_token: SecretStr | None = None
    """The app's client token (App settings > Advanced): device login sends APP_ID|TOKEN."""
    facebook_app_secret: SecretStr | None = None
    """The app secret: exchanges the device login's token for a long-lived one, whose Page
    tokens do not expire. Unset: Page tokens expire with the short-lived user token."""
    x_client_id: str | None = None
    """X OAuth 2.0 client id (authorization code flow with PKCE)."""
    x_client_secret: SecretStr | None = None
    """X client secret for a confidential client (sent as HTTP Basic); unset: public client."""
    x_redirect_uri: str = "http://127.0.0.1:8976/callback"
    """Callback URL registered with the X app; the operator pastes back where it led."""
    mock_client_id: str = "creatordeck-demo"
    """Client id at the mock platform (`creatordeck mockstagram`)."""
    oauth_base_url: str | None = None
    """Tests and demo only: send every platform's OAuth and identity requests to this base URL
    (the mock platform), keeping each endpoint's path. Refused under ENV=prod."""
    oauth_refresh_margin_s: float = Field(default=600.0, ge=1)
    """Refresh a token this long before it expires (at most a quarter of its lifetime)."""
    oauth_refresh_jitter_s: float = Field(default=120.0, ge=0)
    """Up to this much earlier again, by connection (spreads refreshes of tokens issued
    together; at most a tenth of the lifetime)."""
    oauth_refresh_every_s: float = Field(default=30.0, gt=0)
    """How often each engine looks for tokens due for a refresh (one indexed query)."""
    oauth_timeout_s: float = Field(default=15.0, gt=0)
    """One OAuth request's timeout (a refresh holds the connection's row lock this long at
    most)."""


@lru_cache(maxsize=1)
def get_oauth_settings() -> OAuthSettings:
    return OAuthSettings()
