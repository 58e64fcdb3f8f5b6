"""Profile one request on demand with pyinstrument, in development only.

Install the extra (``pip install 'toolkit[profiling]'``) and add the middleware last, so it is the
outermost of yours and the profile covers the others too::

    app = App(debug=True)  # or serve with `toolkit dev`, which turns debug on
    app.add_middleware(ProfilingMiddleware)

Then ``GET /items/1?profile`` (or ``?profile=html``, or as in the common FastAPI recipe
``?profile=true``; ``1``, ``yes`` and ``on`` too) answers pyinstrument's HTML page for that
request instead of the app's response, and ``?profile=speedscope`` a speedscope JSON file
(open it at https://www.speedscope.app). The parameter is removed from the query string before
the app sees it. ``header="X-Profile"`` adds a header trigger (``X-Profile: speedscope``).

Only a request that asks is profiled; any other request costs one substring check of its query
string (plus a look through its headers with ``header=``). A profiled request runs the app as
usual (its side effects happen), then its response, streamed or not, is read to the end and
thrown away; only its ``Set-Cookie`` lines are kept (so a profiled login still logs in) and its
status is given as ``X-Profiled-Status``. An exception from the app is not swallowed: the
profiler stops and the exception goes on to the normal error path (a 500 without a traceback
unless debug is on). An unknown value (``?profile=pdf``, ``?profile=false``) or conflicting ones
get 400, and a profile asked for inside a request that is already being profiled (the middleware
added twice, or another pyinstrument profiler around the app) gets 409.

Profiles are taken one at a time (per middleware and event loop): a request asking for one while
another profiled request runs waits for it to finish, up to ``wait`` seconds (default 30), then
gets 409. Requests that do not ask are never held up and keep running meanwhile. pyinstrument's
strict async mode ties the profile to its request's task: time the handler spends awaiting
(``await anyio.sleep(1)``, a database) is shown on the ``await`` line; time other requests run
while it is switched out without an await pyinstrument recognises (``await anyio.sleep(0)`` and
other bare checkpoints) is shown as ``[out-of-context]``, so their functions never appear in it.
While a profile runs, every request of that worker is slower (the sampler hooks the event loop's
thread). Work done in another thread (a sync ``def`` handler or dependency, run in the thread
pool) is not sampled: the profile shows the await of that thread.

Refused when debug is off: a profile shows source paths, function names and timings to whoever
asks, so unless ``force=True``:

- with a lifespan (``toolkit run`` and ``toolkit dev`` always run it), startup fails with
  ``lifespan.startup.failed`` and a message saying why: the server does not start;
- without one, the first request asking for a profile logs that error once (logger
  ``toolkit.profiling``); from then on (as on every request of a refused middleware) requests
  pass through untouched: nobody is profiled, the trigger reaches the app as it would without
  the middleware, and a client cannot tell the middleware is there.

Debug is the ``debug`` attribute of ``scope["app"]`` (a toolkit ``App`` or a Starlette app sets
itself there before its middleware runs), read at each lifespan startup, or at the first request
asking for a profile when no lifespan ran. An app without one counts as debug off.

``force=True`` profiles even then (a warning is logged at startup): pair it with ``allow=``, a
predicate on the request's ``HTTPConnection`` (``lambda conn: conn.client.host == "10.0.0.5"``);
a request it refuses is served as if the middleware were not there.

``interval`` is pyinstrument's sampling interval in seconds (default 1 ms); ``wait`` how long a
request asking for a profile waits for the one running (``0``: answer 409 at once).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import urllib.parse
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..responses import JSONResponse

if TYPE_CHECKING:
    from pyinstrument.session import Session

__all__ = ["ProfilingMiddleware"]

logger = logging.getLogger("toolkit.profiling")

INSTALL_HINT = "pip install 'toolkit[profiling]'"

#: The formats a request may ask for: the trigger's value -> (content type, extra headers).
FORMATS: dict[str, tuple[bytes, list[tuple[bytes, bytes]]]] = {
    "html": (b"text/html; charset=utf-8", []),
    "speedscope": (
        b"application/json",
        [(b"content-disposition", b'attachment; filename="profile.speedscope.json"')],
    ),
}
#: Other values meaning html: a bare ``?profile``, and the common recipe's ``?profile=true``/``1``.
_ALIASES = {"": "html", "1": "html", "true": "html", "yes": "html", "on": "html"}

REFUSAL = (
    "ProfilingMiddleware refused: the app's debug is off, and a profile shows source paths, "
    "function names and timings to whoever asks for one. Profile in development (`toolkit dev`, "
    "or App(debug=True)), leave the middleware out in production, or pass force=True "
    "(with allow=) to profile anyway."
)
FORCED = (
    "ProfilingMiddleware is forced on with debug off: any request%s that asks for a profile gets "
    "one, showing source paths and function names"
)

# In a description shown in the HTML page's <script> (pyinstrument's JSON does not escape "<"):
# a request path is percent-encoded, so "</script>" in it stays text.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


class ProfilingMiddleware:
    """Answer pyinstrument's profile of a request that asks for one (``?profile=html`` or
    ``?profile=speedscope``), in development only: see the module's documentation."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        query_param: str | None = "profile",
        header: str | None = None,
        interval: float = 0.001,
        force: bool = False,
        allow: Callable[[HTTPConnection], bool] | None = None,
        wait: float = 30.0,
    ) -> None:
        try:
            from pyinstrument import Profiler
            from pyinstrument.renderers import HTMLRenderer, SpeedscopeRenderer
        except ImportError as exc:
            raise ImportError(
                f"ProfilingMiddleware needs pyinstrument, which is not installed: {INSTALL_HINT}"
            ) from exc
        if query_param is None and header is None:
            raise ValueError("ProfilingMiddleware needs a query_param or a header to be asked with")
        if query_param is not None and (not query_param or not query_param.isascii()):
            raise ValueError(f"query_param must be a non-empty ASCII name, got {query_param!r}")
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if not wait >= 0:
            raise ValueError(f"wait must be a number of seconds, 0 or more, got {wait!r}")
        self.app = app
        self.query_param = query_param
        self.header = header
        self.interval = interval
        self.force = force
        self.allow = allow
        self.wait = wait
        self._query_key = query_param.encode("ascii") if query_param is not None else None
        self._header_key = header.lower().encode("latin-1") if header is not None else None
        self._profiler = Profiler
        self._renderers: dict[str, Callable[[Session], str]] = {
            "html": lambda session: HTMLRenderer().render(session),
            "speedscope": lambda session: SpeedscopeRenderer().render(session),
        }
        # None until decided: at each lifespan startup, else at the first request asking.
        self._active: bool | None = None
        # One profile at a time, per event loop: made at the first profile a loop asks for, as an
        # anyio.Lock must not be shared by two loops (tests serve an app with one, then another).
        self._locks: weakref.WeakKeyDictionary[object, anyio.Lock] = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            # PERF: the one check a request that does not ask pays (with no header trigger).
            key = self._query_key
            if (key is not None and key in scope["query_string"]) or (
                self._header_key is not None and self._has_header(scope)
            ):
                await self._maybe_profile(scope, receive, send)
                return
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _has_header(self, scope: Scope) -> bool:
        key = self._header_key
        return any(name == key for name, _ in scope["headers"])

    # --- debug or refused ---------------------------------------------------------------------

    def _decide(self, scope: Scope) -> bool:
        """Whether to profile at all (a warning is logged when forced)."""
        debug = getattr(scope.get("app"), "debug", False) is True
        self._active = debug or self.force
        if self.force and not debug:
            logger.warning(FORCED, "" if self.allow is None else " that allow= accepts")
        return self._active

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The server logs the refusal (uvicorn: an error, then "Application startup failed").
        if self._decide(scope):
            await self.app(scope, receive, send)
            return
        # Refused: the app's own startup never runs, so there is nothing to shut down.
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.failed", "message": REFUSAL})
        raise RuntimeError(REFUSAL)

    # --- a request that asks ------------------------------------------------------------------

    async def _maybe_profile(self, scope: Scope, receive: Receive, send: Send) -> None:
        active = self._active
        if active is None:  # no lifespan ran
            active = self._decide(scope)
            if not active:
                logger.error(REFUSAL)
        if not active or (self.allow is not None and not self.allow(HTTPConnection(scope))):
            await self.app(scope, receive, send)  # as if the middleware were not there
            return
        values: list[str] = []
        if self._query_key is not None:
            scope["query_string"], values = _take_param(scope["query_string"], self.query_param or "")
        if self._header_key is not None:
            key = self._header_key
            values += [value.decode("latin-1") for name, value in scope["headers"] if name == key]
        if not values:  # the query string only looked like it asked (``?user_profile=1``)
            await self.app(scope, receive, send)
            return
        formats = {_ALIASES.get(value, value) for value in (v.strip().lower() for v in values)}
        if len(formats) > 1 or not formats <= FORMATS.keys():
            asked = ", ".join(sorted(repr(v) for v in set(values)))
            name = self.query_param or "profile"
            await _answer_error(
                scope,
                receive,
                send,
                400,
                f"Unknown or conflicting profile format {asked}: ask for one of "
                f"{', '.join(FORMATS)} (?{name}=html); {', '.join(a for a in _ALIASES if a)} "
                f"or a bare ?{name} mean html",
            )
            return
        lock = self._lock()
        try:
            lock.acquire_nowait()
        except anyio.WouldBlock:
            acquired = False
            with anyio.move_on_after(self.wait):
                await lock.acquire()
                acquired = True
            if not acquired:
                await _answer_error(
                    scope,
                    receive,
                    send,
                    409,
                    f"Another profiled request is running: profiles are taken one at a time, and "
                    f"this one waited {self.wait:g} s for it. Retry when it is done",
                )
                return
        await self._profile(scope, receive, send, formats.pop(), lock)

    def _lock(self) -> anyio.Lock:
        """This event loop's lock (made at its first profile)."""
        try:
            loop: object = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): one run at a time per thread
            loop = threading.current_thread()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = anyio.Lock()
        return lock

    async def _profile(
        self, scope: Scope, receive: Receive, send: Send, output: str, lock: anyio.Lock
    ) -> None:
        """Profile the app with ``lock`` held (released once the profiler stops)."""
        try:
            # Strict: a sample taken while another task runs (its context switched in without
            # an await pyinstrument recognised, as after ``await anyio.sleep(0)``) is shown as
            # [out-of-context], not as that task's stack (what "enabled" does).
            profiler = self._profiler(interval=self.interval, async_mode="strict")
            path = urllib.parse.quote(scope.get("path", ""), safe=_PATH_SAFE)
            try:
                profiler.start(
                    caller_frame=inspect.currentframe(),
                    target_description=f"{scope.get('method', '')} {path}",
                )
            except RuntimeError:  # pyinstrument: a profiler already runs in this task's context
                await _answer_error(
                    scope, receive, send, 409, "This request is already being profiled by another profiler"
                )
                return
            app_response: dict[str, Any] = {"status": None, "cookies": []}

            async def discard(message: Message) -> None:
                # The app's response is read to the end and dropped (its Set-Cookie lines kept).
                if message["type"] == "http.response.start":
                    app_response["status"] = message["status"]
                    app_response["cookies"] = [
                        (name, value)
                        for name, value in message.get("headers", ())
                        if name.lower() == b"set-cookie"
                    ]

            try:
                await self.app(scope, receive, discard)
            finally:
                session = profiler.stop()  # an exception goes on to the error path, unchanged
        finally:
            lock.release()  # the next profile may start while this one is rendered and sent
        render = self._renderers[output]
        body = (await anyio.to_thread.run_sync(render, session)).encode("utf-8")
        content_type, extra = FORMATS[output]
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            *extra,
            *app_response["cookies"],
        ]
        if app_response["status"] is not None:
            headers.append((b"x-profiled-status", str(app_response["status"]).encode("latin-1")))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _take_param(query_string: bytes, name: str) -> tuple[bytes, list[str]]:
    """``query_string`` without the ``name`` parameters, and their values (decoded as Starlette
    decodes a query string); the other parameters are kept byte for byte."""
    kept: list[bytes] = []
    values: list[str] = []
    for part in query_string.split(b"&"):
        raw_name, has_value, raw_value = part.partition(b"=")
        if urllib.parse.unquote_plus(raw_name.decode("latin-1")) == name:
            values.append(urllib.parse.unquote_plus(raw_value.decode("latin-1")) if has_value else "")
        else:
            kept.append(part)
    return b"&".join(kept), values


async def _answer_error(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status, headers={"Cache-Control": "no-store"})
    await response(scope, receive, send)
