"""Each platform's OAuth facts in one table: flow, endpoints, scopes, how to read who it is.

Client ids and secrets are not here: they come from the environment
(`Settings.oauth` in storage.settings),
looked up by `client_for`. `Provider.at(base)` keeps every path and swaps the host: the mock
platform serves each platform's paths, so tests and the demo run the real flows on loopback.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from storage.models import Platform
from storage.settings import EnvMode, OAuthSettings, Settings
from storage.user_error import UserError

DEFAULT_MOCK_URL = "http://127.0.0.1:8765"  # engine.mock_platform.server
GRAPH = "https://graph.facebook.com/v21.0"


class Flow(StrEnum):
    DEVICE = "device"  # RFC 8628 device authorization grant
    FACEBOOK_DEVICE = "facebook_device"  # Facebook Login for Devices (RFC 8628's shape, FB's words)
    PKCE = "pkce"  # authorization code + PKCE; the operator pastes back the redirect


class Identity(StrEnum):
    """How the identity endpoint's answer names the account (engine.oauth.connect)."""

    USERINFO = "userinfo"  # {"id", "name"}
    YOUTUBE_CHANNEL = "youtube_channel"  # channels?mine=true: items[0].id, .snippet.title
    X_ME = "x_me"  # users/me: data.id, data.username
    FACEBOOK_PAGE = "facebook_page"  # me/accounts: a Page, with its own token
    INSTAGRAM_ACCOUNT = "instagram_account"  # me/accounts: a Page's instagram_business_account


class OAuthConfigError(RuntimeError, UserError):
    """A client id or secret this flow needs is not in the environment (the message says which)."""

    title = "OAuth not configured"


@dataclass(frozen=True, slots=True)
class Client:
    id: str
    secret: str | None = field(default=None, repr=False)
    # Facebook's device login authenticates as APP_ID|CLIENT_TOKEN.
    client_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Provider:
    platform: Platform
    flows: tuple[Flow, ...]  # the first is the default
    scopes: tuple[str, ...]
    token_url: str
    identity_url: str
    identity: Identity
    device_url: str | None = None
    device_status_url: str | None = None  # Facebook polls here, not at the token endpoint
    authorize_url: str | None = None
    revoke_url: str | None = None
    exchange_url: str | None = None  # Facebook: short-lived -> long-lived user token
    basic_auth: bool = False  # client secret as HTTP Basic (X) rather than in the form
    env: tuple[str, ...] = ()  # the variables `client_for` reads, for error messages

    @property
    def flow(self) -> Flow:
        return self.flows[0]

    def at(self, base: str) -> Provider:
        """The same provider with every URL's scheme and host taken from `base`."""
        target = urlsplit(base.rstrip("/"))

        def move(url: str | None) -> str | None:
            if url is None:
                return None
            parts = urlsplit(url)
            path = target.path + parts.path
            return urlunsplit((target.scheme, target.netloc, path, parts.query, ""))

        return replace(
            self,
            token_url=move(self.token_url) or "",
            identity_url=move(self.identity_url) or "",
            device_url=move(self.device_url),
            device_status_url=move(self.device_status_url),
            authorize_url=move(self.authorize_url),
            revoke_url=move(self.revoke_url),
            exchange_url=move(self.exchange_url),
        )


YOUTUBE = Provider(
    platform=Platform.YOUTUBE,
    flows=(Flow.DEVICE,),
    # Of the YouTube scopes Google allows in the device flow, `youtube` covers uploads.
    scopes=("https://www.googleapis.com/auth/youtube",),
    device_url="https://oauth2.googleapis.com/device/code",
    token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL, not a password
    revoke_url="https://oauth2.googleapis.com/revoke",
    identity_url="https://www.googleapis.com/youtube/v3/channels?part=snippet&mine=true",
    identity=Identity.YOUTUBE_CHANNEL,
    env=("YOUTUBE_CLIENT_ID", "YOUTUBE_CLIENT_SECRET"),
)

FACEBOOK = Provider(
    platform=Platform.FACEBOOK,
    flows=(Flow.FACEBOOK_DEVICE,),
    scopes=("pages_show_list", "pages_manage_posts", "pages_read_engagement"),
    device_url=f"{GRAPH}/device/login",
    device_status_url=f"{GRAPH}/device/login_status",
    token_url=f"{GRAPH}/oauth/access_token",
    exchange_url=f"{GRAPH}/oauth/access_token",
    identity_url=f"{GRAPH}/me/accounts?fields=id,name,access_token",
    identity=Identity.FACEBOOK_PAGE,
    env=("FACEBOOK_APP_ID", "FACEBOOK_CLIENT_TOKEN", "FACEBOOK_APP_SECRET"),
)

INSTAGRAM = replace(
    FACEBOOK,
    platform=Platform.INSTAGRAM,
    scopes=(
        "instagram_basic",
        "instagram_content_publish",
        "pages_show_list",
        "pages_read_engagement",
    ),
    identity_url=(
        f"{GRAPH}/me/accounts?fields=id,name,access_token,instagram_business_account{{id,username}}"
    ),
    identity=Identity.INSTAGRAM_ACCOUNT,
)

X = Provider(
    platform=Platform.X,
    flows=(Flow.PKCE,),
    # offline.access: a refresh token (X rotates it on every refresh).
    scopes=("tweet.read", "tweet.write", "users.read", "offline.access"),
    authorize_url="https://x.com/i/oauth2/authorize",
    token_url="https://api.x.com/2/oauth2/token",  # noqa: S106 - a URL, not a password
    revoke_url="https://api.x.com/2/oauth2/revoke",
    identity_url="https://api.x.com/2/users/me",
    identity=Identity.X_ME,
    basic_auth=True,
    env=("X_CLIENT_ID", "X_CLIENT_SECRET", "X_REDIRECT_URI"),
)

MOCK = Provider(
    platform=Platform.MOCK,
    flows=(Flow.DEVICE, Flow.PKCE),
    scopes=("publish", "read"),
    device_url=f"{DEFAULT_MOCK_URL}/oauth/device/code",
    token_url=f"{DEFAULT_MOCK_URL}/oauth/token",
    authorize_url=f"{DEFAULT_MOCK_URL}/oauth/authorize",
    revoke_url=f"{DEFAULT_MOCK_URL}/oauth/revoke",
    identity_url=f"{DEFAULT_MOCK_URL}/oauth/userinfo",
    identity=Identity.USERINFO,
    env=("MOCK_CLIENT_ID", "MOCKSTAGRAM_URL"),
)

PROVIDERS: dict[Platform, Provider] = {
    p.platform: p for p in (MOCK, YOUTUBE, FACEBOOK, INSTAGRAM, X)
}


def provider_for(platform: Platform, settings: Settings) -> Provider:
    """The platform's provider, moved to the mock platform where the deployment says so."""
    provider = PROVIDERS[platform]
    if settings.oauth.base_url:
        if settings.env is EnvMode.PROD:
            raise OAuthConfigError("OAUTH_BASE_URL is for tests and the demo: unset it in prod")
        return provider.at(settings.oauth.base_url)
    if platform is Platform.MOCK:
        return provider.at(settings.tracking.mockstagram_url)
    return provider


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter is not None else None


def client_for(platform: Platform, settings: OAuthSettings) -> Client:
    """This deployment's OAuth client at `platform`; OAuthConfigError names what is missing."""
    if platform is Platform.MOCK:
        return Client(settings.mock_client_id)
    if platform is Platform.YOUTUBE:
        if not settings.youtube_client_id or settings.youtube_client_secret is None:
            raise OAuthConfigError(
                "YOUTUBE_CLIENT_ID and YOUTUBE_CLIENT_SECRET must be set (a Google OAuth client "
                'of type "TVs and Limited Input devices")'
            )
        return Client(settings.youtube_client_id, _secret(settings.youtube_client_secret))
    if platform in (Platform.FACEBOOK, Platform.INSTAGRAM):
        if not settings.facebook_app_id or settings.facebook_client_token is None:
            raise OAuthConfigError(
                "FACEBOOK_APP_ID and FACEBOOK_CLIENT_TOKEN must be set (Facebook Login for "
                "Devices enabled on the app); FACEBOOK_APP_SECRET too for tokens that last"
            )
        return Client(
            settings.facebook_app_id,
            _secret(settings.facebook_app_secret),
            _secret(settings.facebook_client_token),
        )
    if platform is Platform.X:
        if not settings.x_client_id:
            raise OAuthConfigError("X_CLIENT_ID must be set (an X app with OAuth 2.0 enabled)")
        return Client(settings.x_client_id, _secret(settings.x_client_secret))
    raise OAuthConfigError(f"no OAuth client for platform {platform}")
