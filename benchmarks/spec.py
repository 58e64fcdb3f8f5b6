"""The one table of benchmark cases: what each request is and what every peer must answer.

The runner checks every peer against this table before timing anything, and parity tests can
replay it through any client. ``timed`` cases are the benchmark scenarios; the others only
pin behaviour (validation errors, defaults, a dependency's cleanup) so that "equivalent apps" is
checked, not assumed.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "ANY",
    "CASES",
    "ID",
    "JWT",
    "SCENARIOS",
    "TIMESTAMP",
    "Case",
    "ErrorLoc",
    "Like",
    "captured",
    "cookie_pair",
]

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


class Like:
    """In an expected JSON body: any value of type ``kind`` (matching ``pattern``, if given).

    For what differs between two correct answers: an id, a timestamp, a freshly signed token.
    """

    __slots__ = ("kind", "label", "pattern")

    def __init__(self, label: str, kind: type, pattern: str | None = None) -> None:
        self.label = label
        self.kind = kind
        self.pattern = re.compile(pattern) if pattern is not None else None

    def matches(self, value: Any) -> bool:
        if not isinstance(value, self.kind) or isinstance(value, bool):
            return False
        return self.pattern is None or self.pattern.fullmatch(value) is not None

    def __repr__(self) -> str:
        return f"<{self.label}>"


ID = Like("id", int)
TIMESTAMP = Like("timestamp", str, r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
JWT = Like("jwt", str, r"[\w-]+\.[\w-]+\.[\w-]+")


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Like):
        return expected.matches(actual)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_matches(value, actual[key]) for key, value in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


def _normalised(expected: Any, actual: Any) -> Any:
    """``actual`` with every value a ``Like`` of ``expected`` accepts replaced by its label."""
    if isinstance(expected, Like):
        return repr(expected) if expected.matches(actual) else actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {key: _normalised(expected.get(key), value) for key, value in actual.items()}
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [_normalised(e, a) for e, a in zip(expected, actual, strict=True)]
    return actual


def _has_like(expected: Any) -> bool:
    if isinstance(expected, Like):
        return True
    if isinstance(expected, dict):
        return any(_has_like(value) for value in expected.values())
    if isinstance(expected, list):
        return any(_has_like(value) for value in expected)
    return False


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
    json: Any = _ABSENT  # the expected JSON body, compared after parsing (``Like`` values: any such)
    text: str | None = None  # the expected text body, compared exactly
    error_locs: tuple[ErrorLoc, ...] | None = None  # for 422s: the ``loc`` of each ``detail`` entry
    response_headers: tuple[tuple[str, str | None], ...] = ()  # (name, value or ANY) it must have
    app: str = "app"  # the peer module's attribute serving this case (apps with middleware differ)
    cookie_from: str | None = None  # send the cookie set by this earlier case's response
    bearer_from: str | None = None  # send the access token in this earlier case's JSON body
    peers: tuple[str, ...] | None = None  # the peers with an app for this case (None: every peer)
    connections: int | None = None  # HTTP mode: wrk's connections for this scenario (None: the run's)
    timed: bool = False
    description: str = ""

    @property
    def target(self) -> str:
        """The request target as it goes on the wire: path and query string."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def sources(self) -> tuple[str, ...]:
        """The earlier cases whose responses this request needs (for a cookie or a token)."""
        return tuple(name for name in (self.cookie_from, self.bearer_from) if name is not None)

    @property
    def variable(self) -> bool:
        """Whether correct answers may differ (ids, timestamps, tokens: ``Like`` values)."""
        return _has_like(self.json)

    def serves(self, peer: str) -> bool:
        """Whether ``peer`` has an app for this case (the harness's null app answers anything)."""
        return self.peers is None or peer in self.peers or peer == "harness"

    def with_cookie(self, cookie: str) -> Case:
        """This request carrying ``cookie`` (``name=value``, from ``cookie_pair``)."""
        return dataclasses.replace(self, headers=(*self.headers, ("cookie", cookie)))

    def with_bearer(self, token: str) -> Case:
        """This request carrying ``Authorization: Bearer <token>``."""
        return dataclasses.replace(self, headers=(*self.headers, ("authorization", f"Bearer {token}")))

    def authenticated(self, kept: Mapping[str, Mapping[str, str]]) -> Case:
        """This request with the cookie and token it names, from ``kept`` (case -> ``captured``)."""
        case = self
        cookie = kept.get(self.cookie_from, {}).get("cookie") if self.cookie_from else None
        if cookie is not None:
            case = case.with_cookie(cookie)
        token = kept.get(self.bearer_from, {}).get("token") if self.bearer_from else None
        if token is not None:
            case = case.with_bearer(token)
        return case

    def normalised(self, body: Any) -> Any:
        """A parsed body with what may differ between correct answers replaced by labels."""
        return _normalised(self.json, body) if self.json is not _ABSENT else body

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
            if self.json is not _ABSENT and not _matches(self.json, parsed):
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


def access_token(body: bytes) -> str | None:
    """The ``access_token`` of a JSON body (an OAuth2 token response), if it has one."""
    if not body.startswith(b"{") or b"access_token" not in body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    token = parsed.get("access_token") if isinstance(parsed, dict) else None
    return token if isinstance(token, str) else None


def captured(headers: Sequence[tuple[str, str]], body: bytes) -> dict[str, str]:
    """What a client keeps from a response for later requests: its cookie, its access token."""
    kept = {}
    if (cookie := cookie_pair(headers)) is not None:
        kept["cookie"] = cookie
    if (token := access_token(body)) is not None:
        kept["token"] = token
    return kept


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


def _post_form(name: str, path: str, fields: dict[str, str], **expect: Any) -> Case:
    body = urlencode(fields).encode()
    form = "application/x-www-form-urlencoded"
    headers = (*BASE_HEADERS, ("content-type", form), ("content-length", str(len(body))))
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

# --- cached and ratelimited: the store-backed features (issue 8) ---------------------------------

# The cached handler builds this catalog (``peers/_fakes.py``) on a miss; the timed requests are hits.
CATALOG_SIZE = 50
CATALOG = {
    "items": [
        {"id": i, "name": f"Item {i}", "price": round(0.5 + i * 1.25, 2), "tags": ["catalog"]}
        for i in range(CATALOG_SIZE)
    ]
}
CACHE_SECONDS = 60
# A limit never reached while timing (in-process, a fast peer answers millions of requests a
# minute), and a tight one the checks exceed on purpose.
RATE_LIMIT, TIGHT_LIMIT = 100_000_000, 2
RATE, TIGHT_RATE = f"{RATE_LIMIT}/minute", f"{TIGHT_LIMIT}/minute"
HELLO = {"message": "Hello, World!"}

# --- shop: apps/shop and its FastAPI twin, each on its own seeded SQLite database --------------

SHOP_PEERS = ("toolkit", "fastapi")  # the shop has no hand-written Starlette version
SHOP_SECRET = "benchmarks-shop-secret-key-of-at-least-32-bytes"
SHOP_USER = {"username": "alice", "email": "alice@example.com", "password": "correct horse battery"}
SHOP_ITEMS: tuple[dict[str, Any], ...] = tuple(
    {
        "name": f"Item {i}",
        "description": f"Seeded item number {i}" if i % 4 else None,
        "price": round(0.5 + i * 1.25, 2),
        "tags": ["seed", "even" if i % 2 == 0 else "odd"],
    }
    for i in range(1, 101)
)
NEW_ITEM = {"name": "Widget", "description": "A new widget", "price": 9.99, "tags": ["tools", "new"]}


def _shop_item(item_id: Any, item: dict[str, Any]) -> dict[str, Any]:
    """An item as the shop returns it (the seeded user, id 1, owns every item)."""
    extra = {"image": None, "created_at": TIMESTAMP, "updated_at": TIMESTAMP}
    return {"id": item_id, "owner_id": 1, **item, **extra}


def _shop_page(skip: int, limit: int) -> dict[str, Any]:
    page = [_shop_item(skip + i + 1, item) for i, item in enumerate(SHOP_ITEMS[skip : skip + limit])]
    return {"items": page, "total": len(SHOP_ITEMS), "skip": skip, "limit": limit}


# --- notes: apps/notes (SQLAlchemy 2.0 async, Alembic) and its FastAPI twin, on seeded SQLite ----

NOTES_PEERS = ("toolkit", "fastapi_tuned")  # the twin is FastAPI + SQLAlchemy as its best users write it
NOTES_AUTHORS = ("ada", "grace", "edsger", "barbara", "donald")
NOTES: tuple[dict[str, Any], ...] = tuple(
    {"author": i % len(NOTES_AUTHORS), "title": f"Note {i}", "body": f"The body of note number {i}. " * 4}
    for i in range(1, 101)
)


def _note(note_id: int) -> dict[str, Any]:
    """A seeded note as both apps return it (authors were inserted first, ids from 1)."""
    note = NOTES[note_id - 1]
    author = {"id": note["author"] + 1, "name": NOTES_AUTHORS[note["author"]]}
    fields = {"id": note_id, "title": note["title"], "body": note["body"], "created_at": TIMESTAMP}
    return {**fields, "author": author}


def _notes_page(offset: int, limit: int) -> dict[str, Any]:
    items = [_note(offset + i + 1) for i in range(min(limit, len(NOTES) - offset))]
    return {"items": items, "total": len(NOTES), "limit": limit, "offset": offset}


_NOTES = {"peers": NOTES_PEERS, "app": "notes_app"}  # 100 notes, never written

_LOGIN = {"username": SHOP_USER["username"], "password": SHOP_USER["password"]}
_TOKEN = {"access_token": JWT, "token_type": "bearer"}
_BAD_CREDENTIALS: dict[str, Any] = {
    "status": 401,
    "json": {"detail": "Incorrect username or password"},
    "response_headers": (("www-authenticate", "Bearer"),),
}
_SHOP = {"peers": SHOP_PEERS, "app": "shop_app"}  # login and list: 100 items, never written
_SHOP_WRITE = {"peers": SHOP_PEERS, "app": "shop_write_app"}  # create: a database of its own

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
    # cached: the first request fills the cache (untimed); every timed request is a hit.
    _get("cached_fill", "/cached", json=CATALOG, app="store_app"),
    _get(
        "cached",
        "/cached",
        json=CATALOG,
        response_headers=(("etag", ANY), ("cache-control", ANY)),
        app="store_app",
        timed=True,
        description=f"a {CATALOG_SIZE}-item JSON list served from the response cache (a hit, memory store)",
    ),
    _get(
        "ratelimited",
        "/ratelimited",
        json=HELLO,
        app="store_app",
        timed=True,
        description="a JSON hello under a per-client rate limit (sliding window, memory store), never hit",
    ),
    _post_form(
        "shop_login",
        "/auth/token",
        _LOGIN,
        json=_TOKEN,
        **_SHOP,
        # The FastAPI twin opens a write transaction to log in: at 64 concurrent logins its
        # server stops answering within a run (0 requests), at 32 it serves them (see the README).
        connections=32,
        timed=True,
        description="shop: OAuth2 password login (a user read, a cheap password check) -> a JWT",
    ),
    _get(
        "shop_list",
        "/items?limit=20",
        json=_shop_page(0, 20),
        **_SHOP,
        connections=32,  # the same server as shop_login's, at the same load
        timed=True,
        description=f"shop: a page of 20 of {len(SHOP_ITEMS)} items (count + select) -> a response model",
    ),
    _post_form("shop_token", "/auth/token", _LOGIN, json=_TOKEN, **_SHOP_WRITE),
    _post_json(
        "shop_create",
        "/items",
        NEW_ITEM,
        status=201,
        json=_shop_item(ID, NEW_ITEM),
        response_headers=(("location", ANY),),
        bearer_from="shop_token",
        **_SHOP_WRITE,
        # SQLite has one writer at a time, and apps/common waits for its write lock in worker
        # threads with SQLite's sleeping busy handler: concurrent writers mostly sleep (see the README).
        connections=1,
        timed=True,
        description="shop: create an item with a bearer token (insert, commit, audit in the background)",
    ),
    _get(
        "orm_page",
        "/notes?limit=20",
        json=_notes_page(0, 20),
        **_NOTES,
        timed=True,
        description=(
            f"SQLAlchemy 2.0 async: a page of 20 of {len(NOTES)} notes with their authors (a join and a"
            " count, a session per request) -> Structs / pydantic models from the ORM rows"
        ),
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

# The store and shop checks: the cache served the timed request (its handler ran once), the limits
# are enforced, the shop authenticates, validates, paginates and commits.
_STORE_CASES: tuple[Case, ...] = (
    _get("cached_calls", "/cached/calls", json={"calls": 1}, app="store_app"),
    *(
        _get(f"ratelimited_tight_{n}", "/ratelimited/tight", json=HELLO, app="store_app")
        for n in range(1, TIGHT_LIMIT + 1)
    ),
    _get(
        "ratelimited_tight_over",
        "/ratelimited/tight",
        status=429,
        response_headers=(("retry-after", ANY),),
        app="store_app",
    ),
)
_SHOP_CASES: tuple[Case, ...] = (
    _post_form(
        "shop_login_wrong", "/auth/token", {**_LOGIN, "password": "wrong"}, **_BAD_CREDENTIALS, **_SHOP
    ),
    _get("shop_list_last_page", "/items?skip=95&limit=20", json=_shop_page(95, 20), **_SHOP),
    _get("shop_list_limit_high", "/items?limit=101", status=422, error_locs=(("query", "limit"),), **_SHOP),
    _post_json("shop_create_anonymous", "/items", NEW_ITEM, **NOT_AUTHENTICATED, **_SHOP_WRITE),
    _post_json(
        "shop_create_bad_price",
        "/items",
        {**NEW_ITEM, "price": 0},
        status=422,
        error_locs=(("body", "price"),),
        bearer_from="shop_token",
        **_SHOP_WRITE,
    ),
    _get("shop_created", "/items/1", json=_shop_item(1, NEW_ITEM), **_SHOP_WRITE),  # committed
)

# The notes checks: the page's bounds, a missing note, an id out of range.
_NOTES_CASES: tuple[Case, ...] = (
    _get("orm_page_last", "/notes?limit=20&offset=90", json=_notes_page(90, 20), **_NOTES),
    _get("orm_page_limit_high", "/notes?limit=101", status=422, error_locs=(("query", "limit"),), **_NOTES),
    _get("orm_note", "/notes/7", json=_note(7), **_NOTES),
    _get("orm_note_missing", "/notes/1000", status=404, json={"detail": "Note not found"}, **_NOTES),
    _get("orm_note_bad_id", "/notes/0", status=422, error_locs=(("path", "note_id"),), **_NOTES),
)

# Last: every ``/deps`` request above opened one connection, and its cleanup closed it, on the
# 401 path too (the peer's process is fresh and the check sends every case once, in order).
_OPENED = sum(case.path == "/deps" for case in _CASES)
CASES: tuple[Case, ...] = (
    *_CASES,
    *_STORE_CASES,
    *_SHOP_CASES,
    *_NOTES_CASES,
    _get("deps_cleanup", "/deps/pool", json={"opened": _OPENED, "closed": _OPENED}),
)

SCENARIOS: dict[str, Case] = {case.name: case for case in CASES if case.timed}
