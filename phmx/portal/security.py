"""Sign-in, sessions, CSRF, login rate limiting, request-size limits and security headers.

* Sessions: Starlette's signed cookie (``SessionMiddleware``, itsdangerous HMAC with a secret
  kept in a 0600 file), HttpOnly, SameSite=Strict, Secure when the portal is served over TLS,
  8-hour lifetime. The cookie holds the username and a CSRF token, nothing else.
* CSRF: every state-changing request authenticated by the cookie must carry the session's token
  (form field ``csrf_token`` or header ``X-CSRF-Token``); API tokens are not ambient credentials
  and need none.
* Login rate limit: after 5 failures in 15 minutes for one username, or 20 from one address,
  sign-in answers 429 without checking the password.
* Upload size: :class:`BodyLimit` stops reading a request body past the configured limit.
* Headers: a CSP without inline script or style, nosniff, no framing, no referrer, no caching of
  anything (the pages carry PHI), HSTS when TLS.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request

from phmx.portal.access import rule_for
from phmx.portal.directory import Directory, Principal

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "phmx_session"
SESSION_MAX_AGE = 8 * 3600
SSO_PREFIX = "sso:"  # a session user signed in through the identity provider: "sso:<display name>"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def session_secret(path: str) -> str:
    """The session-signing secret: read from ``path``, created there (0600) on first start."""
    p = Path(path)
    if not p.is_file():
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    text = p.read_text().strip()
    if len(text) < 32:
        from phmx.errors import ConfigError

        raise ConfigError(f"{path}: the session secret is shorter than 32 characters",
                          hint="delete the file to have a new one made, or write a longer random secret")
    return text


class NotSignedIn(Exception):
    """Raised by :func:`authorize` when nobody is signed in (pages redirect, the API answers 401)."""


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def principal_of(request: Request) -> Principal | None:
    """The caller: an API token in ``Authorization: Bearer`` or the session's account."""
    directory: Directory = request.app.state.directory
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return directory.authenticate_token(value.strip())
    user = request.session.get("user") if "session" in request.scope else None
    if isinstance(user, str) and user.startswith(SSO_PREFIX):
        org = request.session.get("org")
        return directory.principal_for_organisation(user[len(SSO_PREFIX):], org) if isinstance(org, str) else None
    return directory.principal_for(user) if isinstance(user, str) else None


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    tok = request.session.get("csrf")
    if not isinstance(tok, str):
        tok = secrets.token_urlsafe(32)
        request.session["csrf"] = tok
    return tok


async def _check_csrf(request: Request) -> None:
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        raise HTTPException(403, "the form has expired or did not come from this site: reload the page and retry")


async def authorize(request: Request) -> None:
    """Apply the route's rule (:mod:`phmx.portal.access`) to the caller; every route depends on it."""
    route = request.scope.get("route")
    rule = rule_for(getattr(route, "name", None))
    if rule is None:
        raise HTTPException(403, "forbidden")  # a route without a rule is closed to everyone
    if rule.public:
        return
    principal = principal_of(request)
    if principal is None:
        raise NotSignedIn
    if principal.via_token and (rule.scope is None or rule.scope not in principal.scopes):
        raise HTTPException(403, "this API token may not call this route")
    if principal.role not in rule.roles:
        raise HTTPException(403, "your organisation may not use this page")
    if request.method not in SAFE_METHODS and not principal.via_token:
        await _check_csrf(request)
    request.state.principal = principal


class LoginLimiter:
    """Failed sign-ins per username and per client address in a sliding window (in memory)."""

    def __init__(self, per_user: int = 5, per_address: int = 20, window_s: float = 900.0) -> None:
        self.per_user, self.per_address, self.window_s = per_user, per_address, window_s
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails[key]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, username: str, address: str) -> int:
        """Seconds to wait before another attempt may be checked (0: go ahead)."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in ((f"u:{username.lower()}", self.per_user), (f"a:{address}", self.per_address)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(int(q[0] + self.window_s - now) + 1)
            return max(waits, default=0)

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._fails[f"u:{username.lower()}"].append(now)
            self._fails[f"a:{address}"].append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(f"u:{username.lower()}", None)


class SecurityHeaders:
    """Adds the security headers to every response (pure ASGI, so streamed downloads get them too)."""

    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app, self.tls = app, tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _SET_HERE]
                headers += _HEADERS + ([(b"strict-transport-security", b"max-age=63072000; includeSubDomains")]
                                       if self.tls else [])
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_SET_HERE = {k for k, _ in _HEADERS} | {b"strict-transport-security"}


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse a request body larger than ``max_bytes`` (413), counting as it streams in: a client
    that lies in Content-Length, or sends none, is cut off at the limit all the same."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


async def _too_large(send: Send, max_bytes: int) -> None:
    import json

    body = json.dumps({"detail": f"the upload is larger than the limit of {max_bytes // 2**20} MB",
                       "fix": "split the file into parts under the limit (for example one per period) and send each"})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body.encode()})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def describe(principal: Principal) -> dict[str, Any]:
    """What the API says about the caller (no secrets)."""
    o = principal.organisation
    return {"name": principal.name, "organisation": o.id, "organisation_name": o.name, "role": str(o.kind),
            "submitter": o.submitter, "recipient": o.recipient, "scopes": sorted(str(s) for s in principal.scopes),
            "via_token": principal.via_token}
