"""The one table of benchmark cases: what each request is and what every peer must answer.

The runner checks every peer against this table before timing anything, and parity tests can
replay it through any client. ``timed`` cases are the benchmark scenarios; the others only
pin behaviour (validation errors, defaults, a dependency's cleanup) so that "equivalent apps" is
checked, not assumed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

__all__ = ["ANY", "CASES", "SCENARIOS", "Case", "ErrorLoc", "cookie_pair"]

ErrorLoc = tuple[str | int, ...]
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
_ABSENT: Any = object()
ANY: None = None  # as a ``response_headers`` value: the header must be there (once), any value
# Headers a real client sends; every peer receives the same list.
BASE_HEADERS: tuple[tuple[str, str], ...] = (
    ("host", "127.0.0.1:8000"),
    ("user-agent", "toolkit-benchmarks"),
    ("accept", "*/*"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    """One request and the response every peer must give to it."""

    name: str
    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = BASE_HEADERS
    body: bytes = b""
    status: int = 200
    content_type: str | None = JSON
    json: Any = _ABSENT  # the expected JSON body, compared after parsing
    text: str | None = None  # the expected text body, compared exactly
    error_locs: tuple[ErrorLoc, ...] | None = None  # for 422s: the ``loc`` of each ``detail`` entry
    response_headers: tuple[tuple[str, str | None], ...] = ()  # (name, value or ANY) it must have
    app: str = "app"  # the peer module's attribute serving this case (apps with middleware differ)
    cookie_from: str | None = None  # send the cookie set by this earlier case's response
    timed: bool = False
    description: str = ""

    @property
    def target(self) -> str:
        """The request target as it goes on the wire: path and query string."""
        return f"{self.path}?{self.query}" if self.query else self.path

    def with_cookie(self, cookie: str) -> Case:
        """This request carrying ``cookie`` (``name=value``, from ``cookie_pair``)."""
        return dataclasses.replace(self, headers=(*self.headers, ("cookie", cookie)))

    def problems(
        self,
        status: int,
        content_type: str | None,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
    ) -> list[str]:
        """Every way a response differs from what this case expects (empty: it conforms)."""
        found = []
        if status != self.status:
            found.append(f"status {status}, expected {self.status}")
        if self.content_type is not None and content_type != self.content_type:
            found.append(f"content-type {content_type!r}, expected {self.content_type!r}")
        for name, value in self.response_headers:
            got = [v for k, v in headers if k.lower() == name.lower()]
            if value is ANY and len(got) != 1:
                found.append(f"header {name}: {got!r}, expected exactly one (any value)")
            elif value is not ANY and got != [value]:
                found.append(f"header {name}: {got!r}, expected [{value!r}]")
        if self.text is not None and body != self.text.encode():
            found.append(f"body {body!r}, expected {self.text!r}")
        if self.json is not _ABSENT or self.error_locs is not None:
            try:
                parsed = json.loads(body)
            except ValueError:
                return [*found, f"body is not JSON: {body[:200]!r}"]
            if self.json is not _ABSENT and parsed != self.json:
                found.append(f"body {parsed!r}, expected {self.json!r}")
            if self.error_locs is not None:
                locs = _error_locs(parsed)
                if locs != self.error_locs:
                    found.append(f"error locs {locs!r}, expected {self.error_locs!r}")
        return found


def cookie_pair(headers: Sequence[tuple[str, str]]) -> str | None:
    """The ``name=value`` a client sends back for the response's (first) ``Set-Cookie``."""
    for name, value in headers:
        if name.lower() == "set-cookie":
            return value.split(";", 1)[0].strip()
    return None


def _error_locs(parsed: Any) -> tuple[ErrorLoc, ...] | None:
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
    if not isinstance(detail, list):
        return None
    return tuple(tuple(entry.get("loc", ())) for entry in detail if isinstance(entry, dict))


def _get(name: str, target: str, **expect: Any) -> Case:
    path, _, query = target.partition("?")
    return Case(name, "GET", path, query, **expect)


def _post_json(name: str, path: str, payload: Any, **expect: Any) -> Case:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    headers = (*BASE_HEADERS, ("content-type", JSON), ("content-length", str(len(body))))
    return Case(name, "POST", path, headers=headers, body=body, **expect)


# The ``deps`` scenario's user, valid token and 401 (see ``benchmarks/peers/_fakes.py``).
TOKEN = "s3cret"
USER = {"id": 1, "name": "Alice", "scopes": ["read", "write"]}
NOT_AUTHENTICATED: dict[str, Any] = {
    "status": 401,
    "json": {"detail": "Not authenticated"},
    "response_headers": (("www-authenticate", "Bearer"),),
}

# The ``session`` and ``stack`` apps sign their cookies with this key; a forged cookie for checks.
SESSION_SECRET = "benchmarks-session-secret"
FORGED_COOKIE = "eyJjb3VudCI6IDQxfQ==.Zm9yZ2Vk.bm90LXNpZ25lZA"

ITEM = {
    "name": "Widget",
    "price": 9.99,
    "tags": ["tools", "sale"],
    "owner": {"id": 7, "email": "owner@example.com"},
}

_CASES: tuple[Case, ...] = (
    # --- timed scenarios -------------------------------------------------------------------
    _get(
        "plaintext",
        "/plaintext",
        content_type=TEXT,
        text="Hello, World!",
        timed=True,
        description="routing + a text response: the framework's fixed cost",
    ),
    _get(
        "json",
        "/json",
        json={"message": "Hello, World!"},
        timed=True,
        description="a small dict encoded as JSON",
    ),
    _get(
        "params",
        "/items/42?q=widget&limit=5",
        json={"item_id": 42, "q": "widget", "limit": 5},
        timed=True,
        description="typed path parameter + two constrained query parameters",
    ),
    _post_json(
        "body",
        "/items",
        ITEM,
        status=201,
        json=ITEM,
        timed=True,
        description="nested JSON body validated into a model, echoed back with 201",
    ),
    _get(
        "deps",
        f"/deps?token={TOKEN}",
        json={"user": USER, "db_open": True},
        timed=True,
        description="three chained dependencies (settings -> generator db -> user from a query token)",
    ),
    # session: a counter in the signed-cookie session (no store): the timed request carries the
    # cookie a first request made (count 1), so every timed request reads 1 and writes 2.
    _get(
        "session_new",
        "/session",
        json={"count": 1},
        response_headers=(("set-cookie", ANY), ("vary", "Cookie")),
        app="session_app",
    ),
    _get(
        "session",
        "/session",
        json={"count": 2},
        response_headers=(("set-cookie", ANY), ("vary", "Cookie")),
        app="session_app",
        cookie_from="session_new",
        timed=True,
        description="a signed-cookie session read, incremented and written back (Set-Cookie)",
    ),
    _get(
        "stack",
        "/stack",
        json={"message": "Hello, World!"},
        # Per-request values: present, any value.
        response_headers=(("x-request-id", ANY), ("x-process-time", ANY)),
        app="stack_app",
        timed=True,
        description="JSON behind error guard + request id, timing and (unused) session middleware",
    ),
    # --- behaviour checks (not timed) ------------------------------------------------------
    _get("params_defaults", "/items/42", json={"item_id": 42, "q": None, "limit": 10}),
    _get("params_bad_id", "/items/abc", status=422, error_locs=(("path", "item_id"),)),
    _get("params_limit_high", "/items/1?limit=101", status=422, error_locs=(("query", "limit"),)),
    _get("params_limit_zero", "/items/1?limit=0", status=422, error_locs=(("query", "limit"),)),
    _get("params_q_long", f"/items/1?q={'x' * 51}", status=422, error_locs=(("query", "q"),)),
    _post_json(
        "body_minimal",
        "/items",
        {"name": "W", "price": 1.5},
        status=201,
        json={"name": "W", "price": 1.5, "tags": [], "owner": None},
    ),
    _post_json("body_no_name", "/items", {"price": 1.5}, status=422, error_locs=(("body", "name"),)),
    _post_json(
        "body_empty_name", "/items", {"name": "", "price": 1.5}, status=422, error_locs=(("body", "name"),)
    ),
    _post_json(
        "body_price_zero", "/items", {"name": "W", "price": 0}, status=422, error_locs=(("body", "price"),)
    ),
    _post_json(
        "body_bad_owner",
        "/items",
        {"name": "W", "price": 1.5, "owner": {"id": "seven", "email": "a@b.c"}},
        status=422,
        error_locs=(("body", "owner", "id"),),
    ),
    _post_json("body_not_json", "/items", b'{"name": ', status=422),
    _get("deps_no_token", "/deps", **NOT_AUTHENTICATED),
    _get("deps_bad_token", "/deps?token=wrong", **NOT_AUTHENTICATED),
    _get("greet", "/greet?name=Bob", json={"message": "Hello, Bob!"}),
    _get("greet_no_name", "/greet", status=422, error_locs=(("query", "name"),)),
    _get(
        "session_forged",
        "/session",
        headers=(*BASE_HEADERS, ("cookie", f"session={FORGED_COOKIE}")),
        json={"count": 1},  # a bad signature: a new, empty session
        app="session_app",
    ),
    _get(
        "stack_request_id",
        "/stack",
        headers=(*BASE_HEADERS, ("x-request-id", "bench-42")),
        json={"message": "Hello, World!"},
        response_headers=(("x-request-id", "bench-42"), ("x-process-time", ANY)),  # echoed
        app="stack_app",
    ),
)

# Last: every ``/deps`` request above opened one connection, and its cleanup closed it, on the
# 401 path too (the peer's process is fresh and the check sends every case once, in order).
_OPENED = sum(case.path == "/deps" for case in _CASES)
CASES: tuple[Case, ...] = (
    *_CASES,
    _get("deps_cleanup", "/deps/pool", json={"opened": _OPENED, "closed": _OPENED}),
)

SCENARIOS: dict[str, Case] = {case.name: case for case in CASES if case.timed}
