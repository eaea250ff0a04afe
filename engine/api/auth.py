"""The dashboard token: `x-dashboard-token` compared in constant time with DASHBOARD_TOKEN."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Security, status
from fastapi.security import APIKeyHeader

from engine.api.context import ApiContext, context

HEADER = "x-dashboard-token"
dashboard_key = APIKeyHeader(
    name=HEADER,
    auto_error=False,
    description="the DASHBOARD_TOKEN of the api's environment",
)


def require_dashboard_token(
    token: str | None = Security(dashboard_key),
    ctx: ApiContext = Depends(context),
) -> None:
    expected = ctx.settings.api.dashboard_token
    if expected is None or not expected.get_secret_value():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "dashboard reads are disabled: set DASHBOARD_TOKEN in the api's environment",
        )
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing {HEADER} header")
    if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"wrong {HEADER}")
