"""Structured JSON logs on stdout, for the engine and the api (stdlib loggers such as arq's too).

Invariant: no credential reaches the output, whoever logs it. Every line — our structlog events
and the stdlib records of httpx, httpcore, uvicorn, arq… — passes `redact`, which replaces the
value of credential-shaped query parameters and form fields (`access_token=`, `key=`, `code=`, …),
`Authorization`-style headers, `Bearer`/`Basic` credentials and URL passwords with `[REDACTED]`,
and the value of any event field named like a credential (`token=`, `password=`, `headers=
{"Authorization": …}`). It runs twice: as a stdlib filter on the root handler (the formatted
message of every foreign record) and as the last shared structlog processor (every field, and
the rendered traceback). Cost: substring checks per string field, a regex only where one can
match — measured +8 µs of CPU a line (a 14-field event 27 → 36 µs, an httpx line 19 → 28 µs).

Redaction is the safety net, not the plan: adapters and publishers send credentials in headers,
never in URLs, and httpx's one line per request stays off below DEBUG.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

REDACTED = "[REDACTED]"
# Query parameters and form fields whose value is a credential. Over-redacting a harmless `code=`
# costs a little debugging; a leaked token costs a revocation.
SECRET_PARAMS = (
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "api_key",
    "apikey",
    "key",
    "token",
    "code",
    "password",
    "passwd",
    "secret",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "upload_id",  # a resumable upload session URL lets its holder write the upload
)
SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-goog-api-key",
    "x-api-key",
    "api-key",
    "x-dashboard-token",
    "cookie",
    "set-cookie",
)
# Event fields whose whole value is a credential (`log.info(..., token=…)`).
SECRET_FIELDS = frozenset(
    {*SECRET_PARAMS, *SECRET_HEADERS, "bearer_token", "api_token"} - {"key", "code", "sig"}
)

_ALT = "|".join
_VALUE = r"[^&#;\s'\"\\<>,)\]}]+"  # stops at the next parameter, quote, escape or bracket
_DONE = rf"(?!{re.escape(REDACTED)})"  # redacting twice changes nothing
# The prefixes are atomic groups: no backtracking into them to find a shorter prefix whose
# "value" would be the space or quote before an earlier [REDACTED].
# `access_token=…` in a query string, a form body or free text.
_PARAM = re.compile(
    rf"(?<![\w.-])((?>(?:{_ALT(map(re.escape, SECRET_PARAMS))})=)){_DONE}{_VALUE}",
    re.IGNORECASE,
)
# `Bearer …` anywhere (what else follows that word in a log line is a credential).
_BEARER = re.compile(rf"\b((?>bearer\s+)){_DONE}{_VALUE}", re.IGNORECASE)
# A header or field named like a credential, written `Name: v`, `"name": "v"`, `(b'Name', b'v')`;
# an auth scheme word (`Basic`, `Token`) before the value stays, the value goes.
_NAMED = re.compile(
    rf"(?<![\w-])((?>(?:{_ALT(map(re.escape, sorted({*SECRET_HEADERS, *SECRET_FIELDS})))})"
    rf"(?:['\"]?\s*[:=]|['\"]\s*,)\s*(?:b?['\"])?(?:(?:bearer|basic|digest|token)\s+)?))"
    rf"{_DONE}[^'\"\\\r\n,)\]}}]+",
    re.IGNORECASE,
)
# `scheme://user:password@host`.
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:)[^/\s@'\"]+@", re.IGNORECASE)


_NAMES = tuple(sorted({*SECRET_HEADERS, *SECRET_FIELDS}))
_PARAMS_ASSIGNED = tuple(f"{name}=" for name in SECRET_PARAMS)


def redact(text: str) -> str:
    """`text` with every credential-shaped value replaced by [REDACTED].

    Substring checks (fast, in C) decide which patterns can match at all: most lines need none.
    """
    if "=" not in text and ":" not in text and " " not in text and "," not in text:
        return text  # a bare word: no pattern below can match it
    lower = text.lower()
    if "=" in text and any(name in lower for name in _PARAMS_ASSIGNED):
        text = _PARAM.sub(rf"\1{REDACTED}", text)
    if "bearer" in lower:
        text = _BEARER.sub(rf"\1{REDACTED}", text)
    if any(name in lower for name in _NAMES):
        text = _NAMED.sub(rf"\1{REDACTED}", text)
    if "@" in text and "://" in text:
        text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    return text


def _redact_value(value: object, depth: int = 0) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float | type(None)) or depth > 4:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _secret_field(k) else _redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v, depth + 1) for v in value]
    # Anything else would be rendered with repr() (structlog's JSON fallback): redact that.
    return redact(repr(value))


def _secret_field(name: object) -> bool:
    return isinstance(name, str) and name.lower() in SECRET_FIELDS


_OURS = frozenset({"timestamp", "level", "logger"})


def redact_event(_logger: Any, _method: str, event_dict: Any) -> Any:
    """structlog processor: redacts every field (after format_exc_info rendered tracebacks)."""
    for name, value in event_dict.items():
        if name.startswith("_") or name in _OURS:
            continue  # structlog's bookkeeping (`_record`), and fields our processors wrote
        event_dict[name] = REDACTED if _secret_field(name) else _redact_value(value)
    return event_dict


class RedactingFilter(logging.Filter):
    """On the root handler: a foreign record's message is redacted before any formatter sees it.

    (structlog's own records carry their event dict as `msg`; `redact_event` handles those.)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad %-args: logging's own error report must not print them raw
            message = f"{record.msg} args={record.args!r}"
        record.msg, record.args = redact(message), None
        return True


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
    redact_event,  # last: it sees the rendered traceback too
]
# Libraries whose lines below WARNING are per-request noise; shown (redacted) at DEBUG.
QUIET_BELOW_DEBUG = ("httpx", "httpcore")
# Libraries that may have installed handlers of their own (uvicorn's default logging config):
# their records must reach the one redacting handler instead.
ROUTED_TO_ROOT = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure(level: str = "INFO") -> None:
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=_SHARED,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ROUTED_TO_ROOT:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
    # arq logs two lines per job; our jobs log what matters (region, job id, timings) themselves.
    logging.getLogger("arq.worker").setLevel(max(logging.WARNING, root.level))
    # httpx logs every request's full URL at INFO: noise at the default level.
    quiet = root.level if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for name in QUIET_BELOW_DEBUG:
        logging.getLogger(name).setLevel(quiet)


def get(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
