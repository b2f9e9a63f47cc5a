"""Bearer-token authentication for the server, as pure ASGI middleware (HTTP and WebSocket alike).

The token is a secret shared by the server (``serve --token-file``) and its devices (``infer
--token-file``). Every request but ``GET /healthz`` must carry ``Authorization: Bearer TOKEN``; the
comparison is constant-time (hmac.compare_digest), and a request without the right token is
answered 401 (a WebSocket handshake is closed with policy violation) before it reaches the app.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

from optimizer.errors import UserError

__all__ = ["MIN_TOKEN_CHARS", "PUBLIC_PATHS", "BearerAuth", "read_token"]

MIN_TOKEN_CHARS = 16
PUBLIC_PATHS = frozenset({"/healthz"})  # liveness probes carry no secret; it reveals the bundle's name only

Scope = dict[str, Any]


def read_token(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace removed); UserError if unreadable or too short."""
    try:
        token = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the token file {path} ({exc})") from exc
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token) or not token.isprintable():
        raise UserError(
            f"the token in {path} must be one line of at least {MIN_TOKEN_CHARS} printable characters "
            "without spaces; make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return token


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" else None
    return None


class BearerAuth:
    """ASGI middleware: requests outside PUBLIC_PATHS need ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    def authorised(self, scope: Scope) -> bool:
        given = _bearer(scope)
        # compare_digest takes time independent of where the two differ (their lengths may leak)
        return given is not None and hmac.compare_digest(given, self.token)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in PUBLIC_PATHS or self.authorised(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "missing or wrong bearer token"})
            return
        body = json.dumps({"detail": "missing or wrong bearer token; send Authorization: Bearer TOKEN"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="split-opt"'),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
