"""Request timing: ``Server-Timing`` per stage, ``X-Process-Time`` and an optional access log."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TIMING_SCOPE_KEY", "TimingMiddleware"]

#: Scope key of the dict where the toolkit records its stages (route, deps, handler, encode), in seconds.
from .._scope_keys import TIMING_SCOPE_KEY

access_logger = logging.getLogger("toolkit.access")


# A Server-Timing metric name is an HTTP token: anything else (a comma or semicolon that would
# forge another entry, a CR/LF, non-ASCII) in a stage name an app recorded becomes "_".
_TOKEN_UNSAFE = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")


def _safe(text: str) -> str:
    """Escape control characters and non-ASCII, so a path cannot forge log lines."""
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


class TimingMiddleware:
    """Stamp ``Server-Timing`` (toolkit stages and ``total``) and ``X-Process-Time`` on responses.

    ``total`` runs to the response start; the access log line (``access_log=True``, logger
    ``toolkit.access``) also gives the time to the last body byte. Background tasks, which run
    after the last byte, are not counted. With ``server_timing=False`` the stages are not
    recorded at all (``scope[TIMING_SCOPE_KEY]`` is not set), so requests cost what they do
    without this middleware, plus the clock reads of ``X-Process-Time``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        server_timing: bool = True,
        process_time_header: str | None = "X-Process-Time",
        access_log: bool = False,
    ) -> None:
        self.app = app
        self.server_timing = server_timing
        self.process_time_header = (
            process_time_header.lower().encode("latin-1") if process_time_header else None
        )
        self.access_log = access_log
        # The Server-Timing value's format for each sequence of stage names seen (a handful).
        self._templates: dict[tuple[str, ...], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        stages: dict[str, float] = {}
        if self.server_timing:
            scope[TIMING_SCOPE_KEY] = stages
        if not self.access_log:
            # PERF: only the response start is looked at.

            async def stamp(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = self._headers(message, stages, time.perf_counter() - start)
                await send(message)

            await self.app(scope, receive, stamp)
            return
        state: dict[str, Any] = {"status": None, "first": None, "last": None}

        async def send_wrapper(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                now = time.perf_counter()
                state["status"], state["first"] = message["status"], now
                message["headers"] = self._headers(message, stages, now - start)
            elif (
                kind == "http.response.body" and not message.get("more_body", False) and state["last"] is None
            ):
                state["last"] = time.perf_counter()
                if self.access_log:
                    self._log(scope, state, start)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if state["status"] is None:
                state["status"] = 500  # what the error guard outside will answer
            raise
        finally:
            if self.access_log and state["last"] is None:
                self._log(scope, state, start)  # no complete response: log what happened

    def _headers(self, start: Message, stages: dict[str, float], total: float) -> list[tuple[bytes, bytes]]:
        headers = list(start.get("headers", ()))
        if self.server_timing:
            names = tuple(stages)
            template = self._templates.get(names)
            if template is None:
                # PERF: one %-format per response instead of an f-string per stage and a join.
                tokens = (_TOKEN_UNSAFE.sub("_", str(name)).replace("%", "%%") for name in names)
                template = "".join(f"{name};dur=%.3f, " for name in tokens) + "total;dur=%.3f"
                if len(self._templates) < 64:
                    self._templates[names] = template
            durations = [seconds * 1000 for seconds in stages.values()]
            durations.append(total * 1000)
            headers.append((b"server-timing", (template % tuple(durations)).encode("latin-1")))
        if self.process_time_header is not None:
            headers.append((self.process_time_header, b"%.6f" % total))
        return headers

    def _log(self, scope: Scope, state: dict[str, Any], start: float) -> None:
        end = state["last"] or time.perf_counter()
        first = state["first"]
        access_logger.info(
            '%s "%s" %s %.3fms (first byte %s) request_id=%s',
            scope.get("method", "?"),
            _safe(scope.get("path", "")),
            state["status"] if state["status"] is not None else "-",
            (end - start) * 1000,
            f"{(first - start) * 1000:.3f}ms" if first is not None else "-",
            _safe(str(scope.get("request_id", "-"))),
        )
