"""No platform credential reaches the logs: the engine's real log pipeline (engine.logs) is
installed, a fetch runs through every platform adapter and a publish through every publisher
(respx for the real platforms, the mock platform for `mock`), and the captured output is searched
for each distinctive secret. Lines from other libraries (httpx, httpcore, uvicorn, arq) and our
own structlog events are redacted by the pipeline itself, whoever wrote the URL or header.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import respx
import structlog
from redis.asyncio import Redis

from engine import logs
from engine.jobs.fetch import run_fetch
from engine.jobs.publish import PublishContext
from engine.platforms.caller import PlatformCaller
from engine.runtime import Runtime
from storage.database import Database
from storage.models import Platform
from tests.support import creators as creators_support
from tests.support.creators import MOCK_URL, add_creators, add_region, tracking
from tests.support.publishing import *  # noqa: F403  (fixtures)
from tests.support.publishing import MockPlatform, add_connection, add_post, drain


@pytest.fixture
def pc(respx_pc: PublishContext) -> PublishContext:
    return respx_pc  # the job's context on httpx's own transport, for respx


SLOT = 1_790_000_040  # a multiple of 60
GRAPH = "https://graph.facebook.com/v21.0"
UPLOAD = "https://www.googleapis.com/upload/youtube/v3/videos"

# Fetch credentials (engine.platforms.config) and publish tokens (one per connection).
YOUTUBE_KEY = "AIzaSyFETCHyoutubeKEY0001"
X_BEARER = "AAAAfetchXbearer0002"
INSTAGRAM_TOKEN = "IGQVfetchInstagram0003"
MOCK_TOKEN = "mockFETCHtoken0004"
PUBLISH_TOKENS = {
    Platform.MOCK: "mockPUBLISHtoken0005",
    Platform.X: "xPUBLISHtoken0006",
    Platform.FACEBOOK: "EAAfacebookPUBLISH0007",
    Platform.INSTAGRAM: "IGQVinstagramPUBLISH0008",
    Platform.YOUTUBE: "ya29youtubePUBLISH0009",
}
# Credentials that cannot move to a header: a signed media URL and a resumable upload session.
MEDIA_SIGNATURE = "cdnSIGNATURE0010"
UPLOAD_ID = "uploadSESSION0011"
SECRETS = [
    YOUTUBE_KEY,
    X_BEARER,
    INSTAGRAM_TOKEN,
    MOCK_TOKEN,
    *PUBLISH_TOKENS.values(),
    MEDIA_SIGNATURE,
    UPLOAD_ID,
]
QUIETED = ("httpx", "httpcore", "arq.worker")
UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


class EngineLogs:
    """engine.logs' configuration, installed for real, its handler writing to a buffer."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def install(self, level: str) -> None:
        logs.configure(level)
        # The same pipeline, but no module-level logger keeps it after this test.
        structlog.configure(cache_logger_on_first_use=False)
        (handler,) = logging.getLogger().handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(self.buffer)

    def output(self) -> str:
        return self.buffer.getvalue()


@pytest.fixture
def engine_logs() -> Iterator[EngineLogs]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIETED}
    routed = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in UVICORN
    }
    yield EngineLogs()
    for name, (was_handlers, propagate) in routed.items():
        logging.getLogger(name).handlers[:] = was_handlers
        logging.getLogger(name).propagate = propagate
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)
    structlog.configure(**saved)


def lines(output: str) -> list[dict[str, object]]:
    """Every line is one JSON object (the redaction never breaks the format)."""
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def assert_no_secret(output: str) -> None:
    leaked = [secret for secret in SECRETS if secret in output]
    assert not leaked, f"secrets in the logs: {leaked}\n{output}"


# --- fetch: every adapter --------------------------------------------------------------------


def fetch_routes(router: respx.MockRouter) -> None:
    router.get("https://www.googleapis.com/youtube/v3/channels").mock(
        return_value=httpx.Response(
            200,
            json={
                "items": [
                    {
                        "id": "acct0",
                        "etag": "e0",
                        "statistics": {"subscriberCount": "10", "videoCount": "2"},
                    }
                ]
            },
        )
    )
    router.get("https://api.x.com/2/users").mock(
        return_value=httpx.Response(
            200,
            json={
                "data": [{"id": "acct0", "public_metrics": {"followers_count": 5}}],
                "errors": [
                    {
                        "resource_id": "acct1",
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                        "detail": "Could not find user with ids: [acct1].",
                    }
                ],
            },
        )
    )
    router.get(url__startswith=f"{GRAPH}/17841400000000000").mock(
        side_effect=[
            httpx.Response(200, json={"business_discovery": {"followers_count": 7}}),
            httpx.Response(
                400,
                json={"error": {"message": "Error validating access token", "code": 190}},
            ),
        ]
    )


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_a_fetch_through_every_adapter_logs_no_credential(
    engine_logs: EngineLogs,
    rt: Runtime,
    db: Database,
    redis: Redis,
    level: str,
) -> None:
    platforms = ["youtube", "x", "instagram", "mock"]
    ids = {}
    for platform in platforms:
        await add_region(db, code=f"R_{platform.upper()}")
        ids[platform] = await add_creators(db, 2, region=f"R_{platform.upper()}", platform=platform)
    settings = tracking(
        youtube_api_key=YOUTUBE_KEY,
        x_bearer_token=X_BEARER,
        instagram_access_token=INSTAGRAM_TOKEN,
        instagram_user_id="17841400000000000",
        mockstagram_token=MOCK_TOKEN,
    )
    mock = creators_support.mock_platform()
    client = httpx.AsyncClient(mounts={MOCK_URL: httpx.ASGITransport(app=mock.app)}, timeout=5)
    caller = PlatformCaller(redis, rt.settings, settings, client=client)
    engine_logs.install(level)
    try:
        with respx.mock(assert_all_called=True) as router:
            fetch_routes(router)
            for platform in platforms:
                await run_fetch(rt, caller, 0, 0, platform, SLOT, ids[platform], final=False)
    finally:
        await caller.close()
    output = engine_logs.output()
    events = lines(output)
    batches = {e.get("platform") for e in events if e.get("event") == "fetch.batch"}
    assert batches == set(platforms)  # the fetches ran and were logged
    assert_no_secret(output)
    requests = [e for e in events if e.get("logger") == "httpx"]
    if level == "DEBUG":
        assert len(requests) >= 5  # the request lines are there, and say where they went
        assert any("googleapis.com/youtube/v3/channels?" in str(e["event"]) for e in requests)
    else:
        assert requests == []  # httpx's per-request line is noise at INFO


# --- publish: every publisher, through the job ------------------------------------------------


def publish_routes(router: respx.MockRouter, mock_url: str) -> None:
    router.route(url__startswith=mock_url).pass_through()
    router.post("https://api.x.com/2/tweets").mock(
        return_value=httpx.Response(201, json={"data": {"id": "1445880548472328192"}})
    )
    router.post(f"{GRAPH}/page1/feed").mock(
        return_value=httpx.Response(200, json={"id": "page1_2153345208024262"})
    )
    router.post(f"{GRAPH}/ig1/media").mock(
        return_value=httpx.Response(200, json={"id": "17889615691921648"})
    )
    router.post(f"{GRAPH}/ig1/media_publish").mock(
        return_value=httpx.Response(200, json={"id": "17920238422030506"})
    )
    router.get(f"{GRAPH}/17920238422030506").mock(
        return_value=httpx.Response(200, json={"permalink": "https://www.instagram.com/p/C0a/"})
    )
    router.get(f"{GRAPH}/17889615691921648").mock(  # the container, polled until FINISHED
        return_value=httpx.Response(200, json={"status_code": "FINISHED"})
    )
    session_url = f"{UPLOAD}?uploadType=resumable&part=snippet,status&upload_id={UPLOAD_ID}"
    router.post(UPLOAD).mock(return_value=httpx.Response(200, headers={"Location": session_url}))
    router.head(url__startswith="https://cdn.example/").mock(  # the video's size, checked
        return_value=httpx.Response(
            200, headers={"content-length": "100", "content-type": "video/mp4"}
        )
    )
    router.get(url__startswith="https://cdn.example/").mock(
        return_value=httpx.Response(200, content=b"\x00" * 100)
    )
    router.put(url__startswith=UPLOAD).mock(
        return_value=httpx.Response(200, json={"id": "dQw4w9WgXcQ"})
    )


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_a_publish_through_every_publisher_logs_no_credential(
    engine_logs: EngineLogs,
    pc: PublishContext,
    db: Database,
    platform: MockPlatform,
    level: str,
) -> None:
    signed = f"https://cdn.example/v.mp4?X-Amz-Expires=600&X-Amz-Signature={MEDIA_SIGNATURE}"
    posts = {
        Platform.MOCK: ("alice", []),
        Platform.X: ("2244994945", []),
        Platform.FACEBOOK: ("page1", []),
        Platform.INSTAGRAM: ("ig1", ["https://cdn.example/a.jpg"]),
        Platform.YOUTUBE: ("channel1", [signed]),
    }
    for name, (account, media) in posts.items():
        conn = await add_connection(db, account, PUBLISH_TOKENS[name], platform=name)
        await add_post(pc.rt, [conn.id], body=f"hello from {name.value}", media=media)
    engine_logs.install(level)
    with respx.mock(assert_all_called=True) as router:
        publish_routes(router, platform.url)
        results = await drain(pc)
    assert results == ["published"] * len(posts)
    output = engine_logs.output()
    assert_no_secret(output)
    requests = [e for e in lines(output) if e.get("logger") == "httpx"]
    if level == "DEBUG":
        assert len(requests) >= 8
        # The upload session's line is there, without the session id (nor the media signature).
        assert any("upload_id=[REDACTED]" in str(e["event"]) for e in requests)
    else:
        assert requests == []


# --- the pipeline redacts whatever library writes the line ------------------------------------


def test_the_pipeline_redacts_credentials_from_any_logger(
    engine_logs: EngineLogs,
) -> None:
    engine_logs.install("DEBUG")
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s"',
        "GET",
        httpx.URL(f"{GRAPH}/me", params={"fields": "id", "access_token": INSTAGRAM_TOKEN}),
        "HTTP/1.1 200 OK",
    )
    logging.getLogger("httpcore.http11").debug(
        "send_request_headers.started request=%r",
        [(b"Authorization", f"Bearer {X_BEARER}".encode()), (b"X-goog-api-key", YOUTUBE_KEY)],
    )
    logging.getLogger("uvicorn.error").warning(
        "Invalid HTTP request: GET /oauth/callback?state=s1&code=%s", MOCK_TOKEN
    )
    logging.getLogger("arq.jobs").error(
        "token refresh failed: grant_type=refresh_token&refresh_token=%s&client_secret=%s"
        "&password=%s&api_key=%s&token=%s",
        *list(PUBLISH_TOKENS.values()),
    )
    try:
        raise httpx.HTTPStatusError(
            f"Server error for url https://www.googleapis.com/youtube/v3/channels?key={YOUTUBE_KEY}",
            request=httpx.Request("GET", "https://www.googleapis.com/"),
            response=httpx.Response(500),
        )
    except httpx.HTTPError:
        logging.getLogger("arq.worker").exception("job failed")
        logs.get("engine.test").exception(
            "platform.failed",
            url=f"{UPLOAD}?upload_id={UPLOAD_ID}&part=snippet",
            headers={"Authorization": f"Bearer {X_BEARER}", "Accept": "application/json"},
            token=INSTAGRAM_TOKEN,
            media=[f"https://cdn.example/a.jpg?sig={MEDIA_SIGNATURE}"],
        )
    output = engine_logs.output()
    events = lines(output)
    assert len(events) == 6
    assert_no_secret(output)
    # Precise: the credential goes, what says where the request went stays.
    assert "fields=id&access_token=[REDACTED]" in str(events[0]["event"])
    assert "Bearer [REDACTED]" in str(events[1]["event"])
    assert "state=s1&code=[REDACTED]" in str(events[2]["event"])
    assert "grant_type=refresh_token&refresh_token=[REDACTED]" in str(events[3]["event"])
    assert "youtube/v3/channels?key=[REDACTED]" in str(events[4]["exception"])
    ours = events[5]
    assert ours["url"] == f"{UPLOAD}?upload_id=[REDACTED]&part=snippet"
    assert ours["headers"] == {"Authorization": "[REDACTED]", "Accept": "application/json"}
    assert ours["token"] == "[REDACTED]"
    assert ours["media"] == ["https://cdn.example/a.jpg?sig=[REDACTED]"]
    assert "HTTPStatusError" in str(ours["exception"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /x?id=1&key=K1&maxResults=50", "GET /x?id=1&key=[REDACTED]&maxResults=50"),
        ("Authorization: Basic dXNlcjpw", "Authorization: Basic [REDACTED]"),
        (
            '{"access_token": "T1", "expires_in": 3600}',
            '{"access_token": "[REDACTED]", "expires_in": 3600}',
        ),
        ("postgresql://app:pw1@db:5432/app", "postgresql://app:[REDACTED]@db:5432/app"),
        # Nothing credential-shaped: left as it is.
        ("monkey=banana&hotkey=x&status_code=401", "monkey=banana&hotkey=x&status_code=401"),
        ("token refresh failed: Authorization header missing", None),
        ("postgresql://postgres@127.0.0.1:5432/postgres", None),
    ],
)
def test_redact_is_precise_and_idempotent(text: str, expected: str | None) -> None:
    redacted = logs.redact(text)
    assert redacted == (expected or text)
    assert logs.redact(redacted) == redacted
