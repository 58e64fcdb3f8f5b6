"""The parity table: one HTTP conversation with the shop service (apps/SPEC.md).

Each ``Step`` is one exchange; steps run in order against a fresh app, so later steps see what
earlier ones created (ids are deterministic on an empty database). A step states the contract
once (``expect``) or, for an intentional difference between the toolkit app and its FastAPI twin,
both answers and the reason (``differs``); README.md's "Differences from FastAPI" lists the same.

Bodies are compared after normalisation (``tests/test_parity.py``): timestamps become ``TS``, a
valid JWT becomes ``JWT``, a 422 keeps only each error's ``type`` and ``loc``, an empty body is
``None`` and a non-JSON body is ``"<media/type>"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TS = "<timestamp>"
#: The admin, made out of band before the conversation (``python -m apps.shop.admin
#: create-admin``): registering never makes one. (username, email, password)
ADMIN = ("root", "root@example.com", "root-password")
#: Login attempts per account and hour the table's apps allow (tests/test_parity.py).
ACCOUNT_ATTEMPTS = 3
JWT = "<jwt>"
ANY = object()  # the body is not fixed by the table (still compared between the two apps)
PRESENT = object()  # a header that must be there, whatever its value


@dataclass(frozen=True)
class Expect:
    status: int
    body: Any = ANY
    headers: Mapping[str, Any] = field(default_factory=dict)  # lower-case name -> value | PRESENT | None
    set_cookie: bool | None = None  # None: not fixed by the table (still compared between apps)


@dataclass(frozen=True)
class Differs:
    reason: str
    toolkit: Expect
    fastapi: Expect


@dataclass(frozen=True)
class Step:
    name: str
    request: str  # "METHOD /path?query"
    expect: Expect | Differs
    json: Any = None
    content: bytes | None = None
    data: Mapping[str, str] | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    bearer: str | None = None  # the name of a token captured earlier (or "expired", "forged")
    jar: str | None = None  # the cookie jar sent and updated (one per logged-in browser)
    save_jar: str | None = None  # copy the jar under this name before the request
    capture: Mapping[str, str] = field(default_factory=dict)  # token name -> response JSON key

    @property
    def method(self) -> str:
        return self.request.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.request.split(" ", 1)[1]


def user(uid: int, name: str, *, admin: bool = False) -> dict[str, Any]:
    roles = ["user", "admin"] if admin else ["user"]
    return {"id": uid, "username": name, "email": f"{name}@example.com", "roles": roles, "created_at": TS}


def item(
    iid: int,
    owner: int,
    name: str,
    price: float,
    *,
    description: str | None = None,
    tags: tuple[str, ...] = (),
    image: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": iid,
        "owner_id": owner,
        "name": name,
        "description": description,
        "price": price,
        "tags": list(tags),
        "image": image,
        "created_at": TS,
        "updated_at": TS,
    }


def page(items: list[dict[str, Any]], total: int, skip: int = 0, limit: int = 20) -> dict[str, Any]:
    return {"items": items, "total": total, "skip": skip, "limit": limit}


def invalid(*entries: str) -> Expect:
    """A 422 listing these errors, each ``"type loc.path"`` (``"string_type body.tags.1"``)."""
    detail = []
    for entry in entries:
        kind, _, path = entry.partition(" ")
        loc = [int(part) if part.isdigit() else part for part in path.split(".")]
        detail.append({"type": kind, "loc": loc})
    return Expect(422, {"detail": detail})


def detail(text: str) -> dict[str, str]:
    return {"detail": text}


def register(name: str) -> dict[str, str]:
    return {"username": name, "email": f"{name}@example.com", "password": f"{name}-password"}


def credentials(name: str, password: str | None = None) -> dict[str, str]:
    return {"username": name, "password": password if password is not None else f"{name}-password"}


BEARER = {"www-authenticate": "Bearer"}
NOT_AUTHENTICATED = Expect(401, detail("Not authenticated"), BEARER)
BAD_TOKEN = Expect(401, detail("Could not validate credentials"), BEARER)
BAD_LOGIN = detail("Incorrect username or password")
UNSUPPORTED = Expect(
    415, detail("Unsupported Media Type: send the body as JSON with Content-Type: application/json")
)
FORBIDDEN = Expect(403, detail("Not enough permissions"))
THROTTLED = Expect(429, detail("Too Many Requests"), {"retry-after": PRESENT}, set_cookie=False)
NOT_OWNER = Expect(403, detail("Not the owner of this item"))
NOT_FOUND = Expect(404, detail("Item not found"))
TOKEN = {"access_token": JWT, "token_type": "bearer"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)
UPLOAD = {"file": ("pic.png", PNG, "image/png")}
CAROL = b'{"username": "carol", "email": "carol@example.com", "password": "carol-password"}'
ROOT, ALICE, BOB = user(1, "root", admin=True), user(2, "alice"), user(3, "bob")
WIDGET = item(1, 2, "Widget", 9.5, tags=("tools", "metal"))
GADGET = item(2, 2, "Gadget", 25.0, description="A small gadget", tags=("tools",))
THING = item(3, 3, "Thing", 3.0)
WIDGET_2 = {**WIDGET, "price": 12.5}  # after "patch price"
WIDGET_3 = {**WIDGET_2, "image": {"content_type": "image/png", "size": len(PNG)}}  # after "upload image"
THING_2 = {**THING, "tags": ["checked"]}  # after "patch as admin"

# fmt: off
STEPS: list[Step] = [
    # --- health, users ----------------------------------------------------------------------------
    Step("health", "GET /health", Expect(200, {"status": "ok"})),
    Step("request id echoed", "GET /health",
         Expect(200, {"status": "ok"}, {"x-request-id": "req-42.a", "x-process-time": PRESENT}),
         headers={"X-Request-ID": "req-42.a"}),
    Step("ready", "GET /ready",
         Expect(200, {"status": "ready", "checks": {"database": "ok", "sessions": "ok"}})),
    Step("register the admin's name", "POST /users", Expect(409, detail("Username already taken")),
         json=register("root")),
    Step("register alice", "POST /users", Expect(201, ALICE, {"location": "/users/2"}),
         json=register("alice")),
    Step("register bob", "POST /users", Expect(201, BOB, {"location": "/users/3"}), json=register("bob")),
    Step("register taken", "POST /users", Expect(409, detail("Username already taken"), {"location": None}),
         json=register("alice")),
    Step("register invalid", "POST /users",
         invalid("string_too_short body.username", "string_pattern_mismatch body.email",
                 "string_too_short body.password"),
         json={"username": "al", "email": "not-an-email", "password": "short"}),
    Step("register bad username", "POST /users", invalid("string_pattern_mismatch body.username"),
         json={"username": "no spaces", "email": "x@example.com", "password": "long enough"}),
    Step("register missing fields", "POST /users",
         invalid("missing body.username", "missing body.email", "missing body.password"), json={}),
    Step("register malformed JSON", "POST /users", invalid("json_invalid body.13"),  # 13: the offset
         content=b'{"username": ', headers={"Content-Type": "application/json"}),
    Step("register as text/plain", "POST /users", Differs(
        "a JSON body sent as text/plain (what a cross-site form or a no-preflight fetch can send) is "
        "refused: 415 names the problem and is a CSRF defence",
        toolkit=UNSUPPORTED, fastapi=invalid("model_attributes_type body"),
    ), content=CAROL, headers={"Content-Type": "text/plain"}),
    Step("register without content type", "POST /users", Differs(
        "a body without Content-Type is not guessed to be JSON: 415 says what the client must fix, "
        "where FastAPI validates the raw bytes against the model",
        toolkit=UNSUPPORTED, fastapi=invalid("model_attributes_type body"),
    ), content=CAROL),
    Step("register huge body", "POST /users", Differs(
        "request bodies are capped (10 MiB by default, per route configurable), counted as they stream "
        "in: a client cannot make the server buffer and parse any size; FastAPI has no cap",
        toolkit=Expect(413, detail("Request body is larger than 10485760 bytes")),
        fastapi=invalid("string_too_long body.username"),
    ), json={"username": "x" * (11 * 1024 * 1024), "email": "x@example.com", "password": "long enough"}),
    # --- OAuth2 password flow ---------------------------------------------------------------------
    Step("token alice", "POST /auth/token", Expect(200, TOKEN, set_cookie=False), data=credentials("alice"),
         capture={"alice": "access_token"}),
    Step("token root", "POST /auth/token", Expect(200, TOKEN), data=credentials("root"),
         capture={"root": "access_token"}),
    Step("token wrong password", "POST /auth/token", Expect(401, BAD_LOGIN, BEARER),
         data=credentials("alice", "wrong")),
    Step("token unknown user", "POST /auth/token", Expect(401, BAD_LOGIN, BEARER),
         data=credentials("nobody")),
    Step("token missing password", "POST /auth/token", invalid("missing body.password"),
         data={"username": "alice"}),
    Step("me anonymous", "GET /users/me", NOT_AUTHENTICATED),
    Step("me bearer", "GET /users/me", Expect(200, ALICE, set_cookie=False), bearer="alice"),
    Step("me expired token", "GET /users/me", BAD_TOKEN, bearer="expired"),
    Step("me forged token", "GET /users/me", BAD_TOKEN, bearer="forged"),
    Step("me not a bearer scheme", "GET /users/me", NOT_AUTHENTICATED,
         headers={"Authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="}),
    # --- session login ----------------------------------------------------------------------------
    Step("login wrong password", "POST /auth/login",
         Expect(401, BAD_LOGIN, {"www-authenticate": None}, set_cookie=False),
         json=credentials("bob", "nope"), jar="bob"),
    Step("login missing fields", "POST /auth/login",
         invalid("missing body.username", "missing body.password"), json={}),
    Step("login bob", "POST /auth/login", Expect(200, BOB, set_cookie=True), json=credentials("bob"),
         jar="bob"),
    Step("me session", "GET /users/me", Expect(200, BOB, set_cookie=False), jar="bob"),
    Step("me session, bad bearer", "GET /users/me", BAD_TOKEN, bearer="forged", jar="bob"),
    Step("me bearer beats session", "GET /users/me", Expect(200, ALICE), bearer="alice", jar="bob"),
    # --- throttling: ACCOUNT_ATTEMPTS logins per account (any case, either endpoint, whether or not
    # the user exists), then 429 before any password check --------------------------------------
    Step("login eve 1", "POST /auth/login", Expect(401, BAD_LOGIN), json=credentials("eve")),
    Step("token eve 2", "POST /auth/token", Expect(401, BAD_LOGIN, BEARER), data=credentials("eve")),
    Step("login Eve 3", "POST /auth/login", Expect(401, BAD_LOGIN), json=credentials("Eve")),
    Step("login eve throttled", "POST /auth/login", THROTTLED, json=credentials("eve")),
    Step("token EVE throttled", "POST /auth/token", Differs(
        "the toolkit's rate limit dependency also sends the RateLimit-* fields (IETF draft: the limit, "
        "what remains, when the window resets, the policy), on a 429 and on an admitted request; the "
        "twin's small equivalent of it (apps/shop_fastapi/throttle.py) sends Retry-After only",
        toolkit=Expect(429, detail("Too Many Requests"), {
            "retry-after": PRESENT, "ratelimit-limit": str(ACCOUNT_ATTEMPTS),
            "ratelimit-policy": f"{ACCOUNT_ATTEMPTS};w=3600"}, set_cookie=False),
        fastapi=Expect(429, detail("Too Many Requests"), {"retry-after": PRESENT, "ratelimit-limit": None},
                       set_cookie=False),
    ), data=credentials("EVE")),
    Step("login eve invalid body", "POST /auth/login", invalid("missing body.password"),
         json={"username": "eve"}),
    Step("token root, same address", "POST /auth/token", Expect(200, TOKEN), data=credentials("root")),
    # --- admin ------------------------------------------------------------------------------------
    Step("admin users anonymous", "GET /admin/users", NOT_AUTHENTICATED),
    Step("admin users as user", "GET /admin/users", FORBIDDEN, bearer="alice"),
    Step("admin users", "GET /admin/users", Expect(200, [ROOT, ALICE, BOB]), bearer="root"),
    Step("admin users page", "GET /admin/users?skip=1&limit=1", Expect(200, [ALICE]), bearer="root"),
    Step("admin users bad page", "GET /admin/users?skip=-1&limit=0",
         invalid("greater_than_equal query.skip", "greater_than_equal query.limit"), bearer="root"),
    Step("admin users skip beyond 64 bits", "GET /admin/users?skip=9223372036854775808",
         invalid("less_than_equal query.skip"), bearer="root"),
    Step("admin audit as user", "GET /admin/audit", FORBIDDEN, bearer="alice"),
    Step("admin audit bad limit", "GET /admin/audit?limit=101", invalid("less_than_equal query.limit"),
         bearer="root"),
    Step("admin audit empty", "GET /admin/audit", Expect(200, []), bearer="root"),
    # --- items ------------------------------------------------------------------------------------
    Step("create item anonymous", "POST /items", NOT_AUTHENTICATED, json={"name": "Widget", "price": 9.5}),
    Step("create widget", "POST /items", Expect(201, WIDGET, {"location": "/items/1"}),
         json={"name": "Widget", "price": 9.5, "tags": ["tools", "metal"]}, bearer="alice"),
    Step("create gadget", "POST /items", Expect(201, GADGET, {"location": "/items/2"}),
         json={"name": "Gadget", "description": "A small gadget", "price": 25, "tags": ["tools"]},
         bearer="alice"),
    Step("create thing by session", "POST /items", Expect(201, THING, {"location": "/items/3"}),
         json={"name": "Thing", "price": 3}, jar="bob"),
    Step("create item invalid", "POST /items",
         invalid("string_too_short body.name", "string_too_long body.description", "greater_than body.price",
                 "too_long body.tags"),
         json={"name": "", "description": "x" * 1001, "price": 0, "tags": [str(i) for i in range(11)]},
         bearer="alice"),
    Step("create item wrong types", "POST /items",
         invalid("missing body.name", "float_parsing body.price", "string_type body.tags.1"),
         json={"price": "cheap", "tags": ["ok", 7]}, bearer="alice"),
    Step("audit after creates", "GET /admin/audit?limit=2", Expect(200, [
        {"id": 3, "user_id": 3, "action": "item.created", "item_id": 3, "at": TS},
        {"id": 2, "user_id": 2, "action": "item.created", "item_id": 2, "at": TS},
    ]), bearer="root"),
    Step("list items", "GET /items", Expect(200, page([WIDGET, GADGET, THING], 3))),
    Step("list page", "GET /items?skip=1&limit=1", Expect(200, page([GADGET], 3, 1, 1))),
    Step("list by tag", "GET /items?tag=tools", Expect(200, page([WIDGET, GADGET], 2))),
    Step("list by price", "GET /items?min_price=5&max_price=20", Expect(200, page([WIDGET], 1))),
    Step("list by text", "GET /items?q=SMALL", Expect(200, page([GADGET], 1))),  # description, any case
    Step("list by owner", "GET /items?owner_id=3", Expect(200, page([THING], 1))),
    Step("list bad query", "GET /items?skip=-1&limit=101&min_price=0",
         invalid("greater_than_equal query.skip", "less_than_equal query.limit",
         "greater_than query.min_price")),
    Step("list beyond 64 bits", "GET /items?skip=99999999999999999999&owner_id=9223372036854775808",
         invalid("less_than_equal query.skip", "less_than_equal query.owner_id")),
    Step("list by owner 0", "GET /items?owner_id=0", invalid("greater_than_equal query.owner_id")),
    Step("list last possible page", "GET /items?skip=9223372036854775807",
         Expect(200, page([], 3, 9223372036854775807))),
    Step("list unparsable optional filters", "GET /items?owner_id=x&max_price=cheap",
         invalid("float_parsing query.max_price", "int_parsing query.owner_id")),
    Step("events limit too small", "GET /items/events?limit=0", invalid("greater_than_equal query.limit")),
    Step("events limit too large", "GET /items/events?limit=1001", invalid("less_than_equal query.limit")),
    Step("read item", "GET /items/1", Expect(200, WIDGET)),
    Step("read missing item", "GET /items/999", NOT_FOUND),
    Step("read item bad id", "GET /items/abc", invalid("int_parsing path.item_id")),
    Step("read item id 0", "GET /items/0", invalid("greater_than_equal path.item_id")),
    Step("read item id beyond 64 bits", "GET /items/9223372036854775808",
         invalid("less_than_equal path.item_id")),
    Step("read largest item id", "GET /items/9223372036854775807", NOT_FOUND),
    Step("patch id beyond 64 bits", "PATCH /items/9223372036854775808",
         invalid("less_than_equal path.item_id"), json={"price": 1}, bearer="alice"),
    Step("delete id beyond 64 bits", "DELETE /items/99999999999999999999",
         invalid("less_than_equal path.item_id"), bearer="alice"),
    Step("upload id beyond 64 bits", "PUT /items/9223372036854775808/image",
         invalid("less_than_equal path.item_id"), files=UPLOAD, bearer="alice"),
    Step("patch anonymous", "PATCH /items/1", NOT_AUTHENTICATED, json={"price": 1}),
    Step("patch not owner", "PATCH /items/1", NOT_OWNER, json={"price": 1}, jar="bob"),
    Step("patch missing", "PATCH /items/999", NOT_FOUND, json={"price": 1}, bearer="alice"),
    Step("patch price", "PATCH /items/1", Expect(200, WIDGET_2), json={"price": 12.5}, bearer="alice"),
    Step("patch clears description", "PATCH /items/2", Expect(200, {**GADGET, "description": None}),
         json={"description": None}, bearer="alice"),
    Step("patch invalid", "PATCH /items/1", invalid("string_too_short body.name", "greater_than body.price"),
         json={"name": "", "price": -1}, bearer="alice"),
    Step("patch null name", "PATCH /items/1", invalid("string_type body.name"), json={"name": None},
         bearer="alice"),
    Step("patch null price and tags", "PATCH /items/1",
         invalid("float_type body.price", "list_type body.tags"),
         json={"price": None, "tags": None}, bearer="alice"),
    Step("patch nothing", "PATCH /items/1", Expect(200, WIDGET_2), json={}, bearer="alice"),
    Step("patch unknown field", "PATCH /items/1", Expect(200, WIDGET_2), json={"colour": "red"},
         bearer="alice"),
    Step("patch as admin", "PATCH /items/3", Expect(200, THING_2), json={"tags": ["checked"]}, bearer="root"),
    Step("upload image", "PUT /items/1/image", Expect(200, WIDGET_3), files=UPLOAD, bearer="alice"),
    Step("upload not owner", "PUT /items/1/image", NOT_OWNER, files=UPLOAD, jar="bob"),
    Step("upload missing item", "PUT /items/999/image", NOT_FOUND, files=UPLOAD, bearer="alice"),
    Step("upload too large", "PUT /items/1/image", Expect(413, detail("Image too large")),
         files={"file": ("big.png", bytes(1024 * 1024 + 1), "image/png")}, bearer="alice"),
    Step("upload without file", "PUT /items/1/image", invalid("missing body.file"),
         files={"picture": ("pic.png", PNG, "image/png")}, bearer="alice"),
    Step("delete not owner", "DELETE /items/2", NOT_OWNER, jar="bob"),
    Step("delete anonymous", "DELETE /items/2", NOT_AUTHENTICATED),
    Step("delete item", "DELETE /items/2", Expect(204, None), bearer="alice"),
    Step("read deleted", "GET /items/2", NOT_FOUND),
    Step("delete again", "DELETE /items/2", NOT_FOUND, bearer="alice"),
    Step("list after delete", "GET /items?limit=5", Expect(200, page([WIDGET_3, THING_2], 2, 0, 5))),
    # --- routing, docs ----------------------------------------------------------------------------
    Step("unknown path", "GET /nowhere", Expect(404, detail("Not Found"))),
    Step("method not allowed", "DELETE /items", Differs(
        "RFC 9110 §15.5.6: `Allow` lists every method the resource supports; Starlette's router stops "
        "at the first route matching the path and names only that route's methods",
        toolkit=Expect(405, detail("Method Not Allowed"), {"allow": "GET, HEAD, POST"}),
        fastapi=Expect(405, detail("Method Not Allowed"), {"allow": "POST"}),
    )),
    Step("head", "HEAD /items/1", Differs(
        "RFC 9110 §9.1: servers support HEAD wherever they support GET; FastAPI serves only the "
        "methods a route lists",
        toolkit=Expect(200, None),
        fastapi=Expect(405, None, {"allow": "GET"}),
    )),
    Step("trailing slash", "GET /items/", Expect(307, None, {"location": "http://testserver/items"})),
    Step("openapi", "GET /openapi.json", Expect(200)),
    Step("docs", "GET /docs", Expect(200, "<text/html>")),
    # --- logout -----------------------------------------------------------------------------------
    Step("logout", "POST /auth/logout", Expect(204, None, set_cookie=True), jar="bob",
         save_jar="bob before logout"),
    Step("me after logout", "GET /users/me", NOT_AUTHENTICATED, jar="bob"),
    Step("replay logged-out cookie", "GET /users/me", Differs(
        "logout deletes the server-side session, so a copy of the old cookie is worthless; Starlette's "
        "session lives in the cookie itself, which stays valid until it expires (14 days by default)",
        toolkit=NOT_AUTHENTICATED,
        fastapi=Expect(200, BOB),
    ), jar="bob before logout"),
    Step("logout without session", "POST /auth/logout", Expect(204, None, set_cookie=False)),
]
# fmt: on
