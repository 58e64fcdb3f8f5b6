"""Session middleware: a signed cookie holding the data, or only an id into a server-side store.

Pure ASGI. The session is loaded lazily (see ``toolkit.sessions.Session``) and saved at
``http.response.start``, where ``Set-Cookie`` is decided. A store failure while saving replaces
the response with a 503: nothing is lost silently and no empty session overwrites real data.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from itsdangerous import BadData, BadSignature, TimestampSigner
from itsdangerous.encoding import base64_decode, base64_encode
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..sessions._session import Session
from ..sessions._store import SessionStoreUnavailable, Store, StoreError

__all__ = ["SessionMiddleware", "SessionTooLarge"]

logger = logging.getLogger("toolkit.sessions")

MAX_COOKIE_BYTES = 4096
_TOUCH_FRACTION = 0.1  # rewrite an unchanged session when 10% of its idle timeout has passed


class SessionTooLarge(ValueError):
    """The client-side session does not fit in a 4 KB cookie (browsers would drop it silently)."""


_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _Signer(TimestampSigner):
    """itsdangerous re-derives the key from the secret on every call; derive each key once."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        cache: dict[Any, bytes] = self.__dict__.setdefault("_derived", {})
        derived = cache.get(secret_key)
        if derived is None:
            derived = cache[secret_key] = super().derive_key(secret_key)
        return derived


class _Record(msgspec.Struct, array_like=True):
    data: dict[str, Any]
    created: float
    written: float


_encode = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(_Record).decode


class SessionMiddleware:
    """``scope["session"]`` (``request.session``) backed by a signed cookie or a ``Store``.

    Without ``store``, the data itself travels in the cookie (msgspec JSON, signed with
    itsdangerous; up to 4 KB). With a store (``MemoryStore``, ``RedisStore`` or your own), the
    cookie holds only a signed random id; only ids the server issued are ever accepted.

    ``secret_key`` may be a list, newest first: old keys still verify, the newest signs.
    ``max_age`` is the absolute lifetime, ``idle_timeout`` the longest gap between requests; both
    are enforced server-side (in the signed payload for cookie sessions).
    ``load="eager"`` loads a server-side session before the app runs (for apps reading
    ``request.session`` directly); the default loads it only when it is used.
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str | bytes | Sequence[str | bytes],
        store: Store | None = None,
        *,
        cookie_name: str = "session",
        max_age: int | None = 14 * 24 * 3600,
        idle_timeout: int | None = None,
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        path: str = "/",
        load: Literal["lazy", "eager"] = "lazy",
    ) -> None:
        keys = [secret_key] if isinstance(secret_key, (str, bytes)) else list(secret_key)
        if not keys or not all(keys):
            raise ValueError("SessionMiddleware needs a non-empty secret_key")
        if cookie_name.startswith("__Host-") and (not https_only or domain is not None or path != "/"):
            raise ValueError("a __Host- cookie needs https_only=True, path='/' and no domain")
        if cookie_name.startswith("__Secure-") and not https_only:
            raise ValueError("a __Secure- cookie needs https_only=True")
        if same_site == "none" and not https_only:
            raise ValueError("same_site='none' needs https_only=True (browsers refuse it otherwise)")
        self.app = app
        self.store = store
        # itsdangerous signs with the last key and verifies with all of them.
        salt = "toolkit.session.id" if store is not None else "toolkit.session.data"
        key_bytes = [k.encode("utf-8") if isinstance(k, str) else k for k in reversed(keys)]
        self.signer = _Signer(key_bytes, salt=salt)
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.idle_timeout = idle_timeout
        self.same_site = same_site
        self.https_only = https_only
        self.domain = domain
        self.path = path
        self.eager = load == "eager"
        if not _COOKIE_NAME.fullmatch(cookie_name):
            raise ValueError(f"{cookie_name!r} is not a valid cookie name")
        self._cookie_prefix = f"{cookie_name}="
        self._cookie_suffix = self._attributes(max_age)
        self._expire_header = (
            f'{cookie_name}=""{self._attributes(0)}; expires=Thu, 01 Jan 1970 00:00:00 GMT'
        ).encode("latin-1")
        self.can_load_sync = store is None
        self._cookie_key = cookie_name

    # --- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        session = Session(self, self._read_cookie(scope))
        scope["session"] = session
        if self.eager and session.cookie is not None and self.store is not None:
            try:
                await session.load()
            except SessionStoreUnavailable as exc:
                if scope["type"] == "http":
                    await _unavailable(send, exc)
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the app's response was replaced by a 503; drop the rest of it
            # PERF: a session the request never loaded has nothing to save (``_commit``'s check).
            if message["type"] == "http.response.start" and session.loaded:
                try:
                    headers = await self._commit(session, message["status"])
                except StoreError as exc:
                    logger.error("session store failed while saving: %s", exc)
                    replaced = True
                    await _unavailable(send, SessionStoreUnavailable())
                    return
                if headers:
                    message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _read_cookie(self, scope: Scope) -> str | None:
        for key, value in scope["headers"]:
            if key == b"cookie":
                cookies = cookie_parser(value.decode("latin-1"))
                if self._cookie_key in cookies:
                    return cookies[self._cookie_key]
        return None

    # --- loading ---------------------------------------------------------------------------

    def _unsign(self, cookie: str | None) -> str | None:
        if not cookie or len(cookie) > MAX_COOKIE_BYTES:
            return None
        try:
            return self.signer.unsign(cookie, max_age=self.max_age).decode("utf-8")
        except (BadSignature, UnicodeDecodeError):
            return None

    def _fresh(self, record: _Record, now: float) -> bool:
        if self.max_age is not None and now - record.created > self.max_age:
            return False
        return not (self.idle_timeout is not None and now - record.written > self.idle_timeout)

    def load_sync(self, session: Session) -> None:
        """Client-side: decode and verify the cookie payload (no I/O)."""
        now = time.time()
        payload = self._unsign(session.cookie)
        record: _Record | None = None
        if payload is not None:
            try:
                record = _decode_record(base64_decode(payload))
            except (msgspec.DecodeError, msgspec.ValidationError, BadData):
                record = None
        if record is not None and self._fresh(record, now):
            session._fill(record.data, created=record.created, written=record.written, session_id=None)
        else:
            session._fill({}, created=now, written=0.0, session_id=None)

    async def load(self, session: Session) -> None:
        if self.store is None:
            self.load_sync(session)
            return
        now = time.time()
        session_id = self._unsign(session.cookie)
        record: _Record | None = None
        if session_id is not None:
            try:
                raw = await self.store.get(session_id)
            except StoreError as exc:
                logger.error("session store failed while loading: %s", exc)
                raise SessionStoreUnavailable() from exc
            if raw is not None:
                try:
                    record = _decode_record(raw)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    logger.warning("discarding an unreadable session record")
            if record is not None and not self._fresh(record, now):
                # Expired server-side: end it for good, so the id can never come back.
                try:
                    await self.store.delete(session_id)
                except StoreError as exc:
                    raise SessionStoreUnavailable() from exc
                record = None
        if record is None:
            # Unknown, forged, expired or absent: a new, empty session. The client's id is
            # never adopted; a new one is issued if the session is ever saved.
            session._fill({}, created=now, written=0.0, session_id=None)
        else:
            session._fill(record.data, created=record.created, written=record.written, session_id=session_id)

    # --- saving ----------------------------------------------------------------------------

    async def _commit(self, session: Session, status: int) -> list[tuple[bytes, bytes]]:
        """Persist the session if needed and return the headers to add."""
        if not session.loaded:
            return []
        headers: list[tuple[bytes, bytes]] = []
        if session.accessed:
            headers.append((b"vary", b"Cookie"))
        if status >= 500:
            return headers  # an error must not persist half-made changes
        if self.store is None:
            return headers + self._commit_cookie(session)
        return headers + await self._commit_store(session)

    def _commit_cookie(self, session: Session) -> list[tuple[bytes, bytes]]:
        data = session.data()
        if session.invalidated and not data:
            return [self._expire()] if session.cookie is not None else []
        now = time.time()
        touch = self._needs_touch(session, now)
        if not (session.modified or touch):
            return []
        created = now if session.invalidated or not session.written else session.created
        # base64url: a cookie value must be plain ASCII (non-Latin-1 text cannot go in a header).
        payload = base64_encode(_encode(_Record(data, created, now)))
        value = self.signer.sign(payload).decode("ascii")
        header = self._set_cookie(value)
        if len(header[1]) > MAX_COOKIE_BYTES:
            raise SessionTooLarge(
                f"the session cookie would be {len(header[1])} bytes, over the {MAX_COOKIE_BYTES}-byte limit "
                "browsers keep: store less in the session, or use a server-side store"
            )
        return [header]

    async def _commit_store(self, session: Session) -> list[tuple[bytes, bytes]]:
        store = self.store
        assert store is not None
        data = session.data()
        now = time.time()
        old_id = session.id
        # Login (regenerate), logout-then-write and a first save all need a fresh id.
        new_id = session.invalidated or session.regenerate_id or old_id is None
        ends_old = old_id is not None and (session.invalidated or session.regenerate_id)
        if not data and new_id:
            # Nothing to keep: end the old record and expire a cookie the client still holds.
            if ends_old:
                assert old_id is not None
                await store.delete(old_id)
            session.id = None
            return [self._expire()] if session.cookie is not None else []
        if not new_id and not (session.modified or self._needs_touch(session, now)):
            return []
        # A new id is a new session: its absolute lifetime restarts.
        created = now if new_id else session.created
        ttl = self._ttl(created, now)
        if ttl <= 0:
            return [self._expire()] if session.cookie is not None else []
        record = _encode(_Record(data, created, now))
        if new_id:
            session_id = secrets.token_urlsafe(32)
            await store.set(session_id, record, ttl)
            if ends_old:
                # Only once the new record exists: a failed write leaves the old session intact.
                assert old_id is not None
                await store.delete(old_id)
        else:
            assert old_id is not None
            session_id = old_id
            if not await store.set(session_id, record, ttl, only_if_exists=True):
                # Ended meanwhile by another request (a logout): never bring it back.
                session.id = None
                return [self._expire()] if session.cookie is not None else []
        session.id = session_id
        return [self._set_cookie(self.signer.sign(session_id).decode("utf-8"))]

    def _needs_touch(self, session: Session, now: float) -> bool:
        """An unchanged session is rewritten (throttled) so the idle timeout slides."""
        if self.idle_timeout is None or not session.written or not dict.__len__(session):
            return False
        return now - session.written > self.idle_timeout * _TOUCH_FRACTION

    def _ttl(self, created: float, now: float) -> float:
        limits = []
        if self.idle_timeout is not None:
            limits.append(float(self.idle_timeout))
        if self.max_age is not None:
            limits.append(created + self.max_age - now)
        return min(limits) if limits else 14 * 24 * 3600.0

    # --- cookies ---------------------------------------------------------------------------

    def _attributes(self, max_age: int | None) -> str:
        """The cookie attributes after the value, in the order ``http.cookies`` writes them."""
        parts = []
        if self.domain is not None:
            parts.append(f"Domain={self.domain}")
        parts.append("HttpOnly")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        parts.append(f"Path={self.path}")
        parts.append(f"SameSite={self.same_site.capitalize()}")
        if self.https_only:
            parts.append("Secure")
        return "; " + "; ".join(parts)

    def _set_cookie(self, value: str) -> tuple[bytes, bytes]:
        # PERF: the signed value is already cookie-safe (URL-safe base64 and "."), so the header
        # is one concatenation; http.cookies.SimpleCookie costs ~30 µs per response.
        return (b"set-cookie", (self._cookie_prefix + value + self._cookie_suffix).encode("latin-1"))

    def _expire(self) -> tuple[bytes, bytes]:
        return (b"set-cookie", self._expire_header)


async def _unavailable(send: Send, exc: SessionStoreUnavailable) -> None:
    body = _encode({"detail": exc.detail})
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
