"""A cached response is never served to another user or another host (MemoryStore and a real Redis).

Each test is what a user writes from the README (``cache=60`` on a route behind a security
scheme, a session or a ``Request``) and what an attacker then tries (another token, no token,
a forged ``Host``)."""

from typing import Annotated, Any

import anyio
import httpx
import msgspec
import pytest
from cache_support import cache_app, portal
from fake_clock import patch_clock

from toolkit import App, BackgroundTasks, Depends, Form, Middleware, Request, Response, RouteConfigError
from toolkit.cache import CachePolicy, cached
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.ratelimit import RateLimiter
from toolkit.security import (
    APIKeyCookie,
    APIKeyHeader,
    APIKeyQuery,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
    OAuth2PasswordBearer,
)
from toolkit.sessions import MemoryStore, Session, Store
from toolkit.testing import TestClient

USERS = {"alice-token": "alice", "bob-token": "bob"}
SESSIONS = [Middleware(SessionMiddleware, secret_key="s" * 32, store=MemoryStore())]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- credentials read by the built-in schemes --------------------------------------------------


def test_oauth2_bearer_users_each_get_their_own_entry(store: Store) -> None:
    app, _ = cache_app(store)
    oauth2 = OAuth2PasswordBearer(tokenUrl="/token")
    calls: list[str] = []

    async def current_user(token: Annotated[str, Depends(oauth2)]) -> str:
        return USERS[token]

    @app.get("/me", cache=60)
    async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
        calls.append(user)
        return {"user": user}

    with TestClient(app) as client:
        alice = client.get("/me", headers=bearer("alice-token"))
        bob = client.get("/me", headers=bearer("bob-token"))
        anonymous = client.get("/me")
        alice_again = client.get("/me", headers=bearer("alice-token"))
    assert alice.json() == {"user": "alice"}
    assert bob.json() == {"user": "bob"}
    assert anonymous.status_code == 401
    assert alice_again.json() == {"user": "alice"}
    assert "age" in alice_again.headers  # a hit, but only of Alice's own entry
    assert calls == ["alice", "bob"]
    for response in (alice, bob, alice_again):
        assert response.headers["cache-control"] == "private, max-age=60"


def test_a_second_authorization_line_does_not_share_the_first_lines_entry(store: Store) -> None:
    app, _ = cache_app(store)
    bearer_scheme = HTTPBearer()
    calls: list[str] = []

    @app.get("/me", cache=60)
    async def me(creds: Annotated[HTTPAuthorizationCredentials, Depends(bearer_scheme)]) -> dict[str, str]:
        calls.append(creds.credentials)
        return {"token": creds.credentials}

    with TestClient(app) as client:
        assert client.get("/me", headers=bearer("alice-token")).json() == {"token": "alice-token"}
        two_lines = httpx.Headers([("authorization", "Bearer alice-token"), ("authorization", "Bearer x")])
        client.get("/me", headers=two_lines)
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("scheme", "send"),
    [
        (APIKeyHeader(name="X-API-Key"), lambda key: {"headers": {"X-API-Key": key}}),
        (APIKeyQuery(name="api_key"), lambda key: {"params": {"api_key": key}}),
        (APIKeyCookie(name="key"), lambda key: {"headers": {"Cookie": f"key={key}"}}),
    ],
    ids=["header", "query", "cookie"],
)
def test_api_keys_each_get_their_own_entry(store: Store, scheme: Any, send: Any) -> None:
    app, _ = cache_app(store)
    calls: list[str] = []

    @app.get("/mine", cache=60)
    async def mine(key: Annotated[str, Depends(scheme)]) -> dict[str, str]:
        calls.append(key)
        return {"owner": key}

    with TestClient(app) as client:
        results = []
        for key in ("k-alice", "k-bob", "k-alice"):
            client.cookies.clear()
            results.append(client.get("/mine", **send(key)))
        client.cookies.clear()
        anonymous = client.get("/mine")
    assert [r.json() for r in results] == [{"owner": "k-alice"}, {"owner": "k-bob"}, {"owner": "k-alice"}]
    assert calls == ["k-alice", "k-bob"]
    assert anonymous.status_code == 401
    assert results[2].headers["cache-control"].startswith("private")


def test_basic_auth_users_each_get_their_own_entry(store: Store) -> None:
    app, _ = cache_app(store)
    basic = HTTPBasic()

    @app.get("/me", cache=60)
    async def me(creds: Annotated[HTTPBasicCredentials, Depends(basic)]) -> dict[str, str]:
        return {"user": creds.username}

    with TestClient(app) as client:
        assert client.get("/me", auth=("alice", "pw")).json() == {"user": "alice"}
        assert client.get("/me", auth=("bob", "pw")).json() == {"user": "bob"}


def test_a_scheme_used_only_as_a_gate_still_keys_on_its_credential(store: Store) -> None:
    """``dependencies=[Depends(scheme)]``: its value is discarded, but a gate can hand what it
    read to the handler through a shared dependency or a context variable; only ``shared=True``
    (the caller's word that the response is the same for everyone) shares the entry."""
    app, _ = cache_app(store)
    calls: list[str] = []
    gate = [Depends(OAuth2PasswordBearer(tokenUrl="/token"))]

    @app.get("/report", cache=60, dependencies=gate)
    async def report() -> dict[str, int]:
        calls.append("report")
        return {"total": 3}

    @app.get("/shared", cache=CachePolicy(60, shared=True), dependencies=gate)
    async def shared() -> dict[str, int]:
        calls.append("shared")
        return {"total": 3}

    with TestClient(app) as client:
        for path in ("/report", "/shared"):
            first = client.get(path, headers=bearer("alice-token"))
            second = client.get(path, headers=bearer("bob-token"))
            assert client.get(path).status_code == 401  # the gate still runs on a hit
            assert first.json() == second.json() == {"total": 3}
            assert second.headers["cache-control"] == "private, max-age=60"
    assert calls == ["report", "report", "shared"]


def test_a_gate_cannot_hand_request_data_to_the_handler_through_a_shared_dependency() -> None:
    """The attack: a Request-reading gate writes into a per-request dependency the handler reads."""
    app, _ = cache_app(MemoryStore())

    async def context() -> dict[str, str]:
        return {}

    async def gate(request: Request, ctx: Annotated[dict[str, str], Depends(context)]) -> None:
        ctx["user"] = request.headers.get("authorization", "")

    with pytest.raises(RouteConfigError, match="gate"):

        @app.get("/me", cache=60, dependencies=[Depends(gate)])
        async def me(ctx: Annotated[dict[str, str], Depends(context)]) -> dict[str, str]:
            return {"user": ctx["user"]}


def test_a_cached_route_cannot_read_a_body() -> None:
    app, _ = cache_app(MemoryStore())

    class Query(msgspec.Struct):
        account: str

    with pytest.raises(RouteConfigError, match="cannot read a request body"):

        @app.get("/report", cache=60)
        async def report(q: Query) -> dict[str, str]:
            return {"for": q.account}

    with pytest.raises(RouteConfigError, match="cannot read a request body"):

        @app.get("/form", cache=60)
        async def form(account: Annotated[str, Form()]) -> dict[str, str]:
            return {"for": account}


def get_raw(app: App, headers: list[tuple[bytes, bytes]]) -> Any:
    """One GET straight into the app with exactly these header lines (clients merge Cookie lines;
    an HTTP/2 server hands them over one per cookie crumb)."""
    transport = httpx.ASGITransport(app=app)

    async def main() -> Any:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            request = client.build_request("GET", "/mine")
            request.headers = httpx.Headers([*request.headers.raw, *headers])
            return (await client.send(request)).json()

    return anyio.run(main)


def test_an_api_key_in_a_later_cookie_line_is_keyed_as_the_scheme_reads_it() -> None:
    app, _ = cache_app(MemoryStore())
    optional = APIKeyCookie(name="key", auto_error=False)

    @app.get("/mine", cache=60)
    async def mine(key: Annotated[str | None, Depends(optional)]) -> dict[str, str | None]:
        return {"owner": key}

    split = [(b"cookie", b"theme=dark"), (b"cookie", b"key=victim")]
    assert get_raw(app, split) == {"owner": "victim"}
    assert get_raw(app, []) == {"owner": None}  # not the victim's entry
    assert get_raw(app, [(b"cookie", b"theme=dark")]) == {"owner": None}
    assert get_raw(app, [(b"cookie", b"key=attacker")]) == {"owner": "attacker"}


# --- sessions --------------------------------------------------------------------------------------


def session_cache_app(store: Store) -> tuple[App, list[str]]:
    app, _ = cache_app(store, middleware=SESSIONS)
    calls: list[str] = []

    @app.post("/login/{name}")
    async def login(name: str, session: Session) -> None:
        session["user"] = name

    @app.get("/me", cache=60)
    async def me(session: Session) -> dict[str, Any]:
        calls.append(str(session.get("user")))
        return {"user": session.get("user")}

    return app, calls


def logged_in(client: TestClient, name: str) -> dict[str, str]:
    """The ``Cookie`` header of a new session for ``name`` (one client plays every user: a Redis
    store belongs to one event loop)."""
    client.cookies.clear()
    response = client.post(f"/login/{name}")
    client.cookies.clear()
    return {"Cookie": f"session={response.cookies['session']}"}


def test_session_users_each_get_their_own_entry_and_vary_cookie_on_hits(store: Store) -> None:
    app, calls = session_cache_app(store)
    with TestClient(app) as client:
        alice, bob = logged_in(client, "alice"), logged_in(client, "bob")
        assert client.get("/me", headers=alice).json() == {"user": "alice"}
        assert client.get("/me", headers=bob).json() == {"user": "bob"}
        assert client.get("/me").json() == {"user": None}
        hit = client.get("/me", headers=alice)
    assert hit.json() == {"user": "alice"}
    assert "age" in hit.headers
    assert calls == ["alice", "bob", "None"]
    assert "cookie" in hit.headers["vary"].lower()  # a hit says what it varies on, too
    assert hit.headers["cache-control"].startswith("private")


def test_session_read_through_the_request_by_a_gate_varies_on_the_cookie(store: Store) -> None:
    """A gate reading ``request.session`` is invisible at registration: the entry records the
    ``Cookie`` it was made for, so another session never gets it."""
    app, _ = cache_app(store, middleware=SESSIONS)

    async def seen(request: Request) -> None:
        await request.session.load()
        request.session.get("user")

    @app.post("/login/{name}")
    async def login(name: str, session: Session) -> None:
        session["user"] = name

    @app.get("/page", cache=CachePolicy(60, vary=["Accept-Language"]), dependencies=[Depends(seen)])
    async def page() -> dict[str, int]:
        return {"n": 1}

    with TestClient(app) as client:
        alice, bob = logged_in(client, "alice"), logged_in(client, "bob")
        first = client.get("/page", headers=alice)
        other = client.get("/page", headers=bob)
        again = client.get("/page", headers=alice)
    assert first.headers["cache-control"].startswith("private")
    assert "age" not in other.headers  # not Alice's entry
    assert "age" in again.headers
    assert "cookie" in again.headers["vary"].lower()


# --- hosts -------------------------------------------------------------------------------------


def test_a_forged_host_never_poisons_the_entry_of_the_real_host(store: Store) -> None:
    app, _ = cache_app(store)

    @app.get("/links", cache=CachePolicy(60, shared=True), name="links")
    async def links(request: Request) -> dict[str, str]:
        return {"self": str(request.url_for("links"))}

    with TestClient(app, base_url="https://shop.example") as client:
        poisoned = client.get("/links", headers={"Host": "evil.example"})
        real = client.get("/links")
        http = client.get("http://shop.example/links")
    assert poisoned.json() == {"self": "https://evil.example/links"}
    assert real.json() == {"self": "https://shop.example/links"}
    assert http.json() == {"self": "http://shop.example/links"}


# --- what is refused at registration -------------------------------------------------------------


def test_a_handler_reading_the_request_must_say_how_to_share() -> None:
    app, _ = cache_app(MemoryStore())
    with pytest.raises(RouteConfigError, match=r"page.*Request.*CachePolicy\(60, shared=True\)"):

        @app.get("/page", cache=60)
        async def page(request: Request) -> dict[str, str]:
            return {"user": request.headers.get("x-user", "")}


def test_a_dependency_passing_request_data_to_the_handler_must_say_how_to_share() -> None:
    app, _ = cache_app(MemoryStore())

    async def user_from_header(request: Request) -> str:
        return request.headers.get("x-user", "")

    with pytest.raises(RouteConfigError, match="user_from_header"):

        @app.get("/me", cache=60)
        async def me(user: Annotated[str, Depends(user_from_header)]) -> dict[str, str]:
            return {"user": user}

    with pytest.raises(RouteConfigError, match="user_from_header"):

        @app.get("/me2")
        @cached(60)
        async def me2(user: Annotated[str, Depends(user_from_header)]) -> dict[str, str]:
            return {"user": user}


def test_vary_names_the_headers_a_request_reading_handler_depends_on(store: Store) -> None:
    app, _ = cache_app(store)

    async def user_from_header(request: Request) -> str:
        return request.headers.get("x-user", "")

    @app.get("/me", cache=CachePolicy(60, vary=["X-User"]))
    async def me(user: Annotated[str, Depends(user_from_header)]) -> dict[str, str]:
        return {"user": user}

    with TestClient(app) as client:
        assert client.get("/me", headers={"X-User": "a"}).json() == {"user": "a"}
        assert client.get("/me", headers={"X-User": "b"}).json() == {"user": "b"}
        hit = client.get("/me", headers={"X-User": "a"})
    assert hit.json() == {"user": "a"}
    assert hit.headers["vary"] == "x-user"


def test_a_gate_reading_the_request_needs_a_policy_but_a_rate_limit_does_not(store: Store) -> None:
    app, _ = cache_app(store)

    async def check(request: Request) -> None:
        request.state.checked = True

    with pytest.raises(RouteConfigError, match="check"):
        app.add_api_route("/page", lambda: {"n": 1}, cache=60, dependencies=[Depends(check)])

    limiter = RateLimiter(store)

    @app.get("/limited", cache=60, dependencies=[Depends(limiter.limit("100/minute"))])
    async def limited() -> dict[str, int]:
        return {"n": 1}

    @app.get("/checked", cache=CachePolicy(60, shared=True), dependencies=[Depends(check)])
    async def checked() -> dict[str, int]:
        return {"n": 1}

    with TestClient(app) as client:
        client.get("/limited")
        hit = client.get("/limited")
        assert "age" in hit.headers
        assert hit.headers["ratelimit-remaining"] == "98"  # counted on the hit too
        assert client.get("/checked").headers["cache-control"] == "max-age=60"


def test_an_override_without_the_request_makes_the_route_cacheable_in_tests(store: Store) -> None:
    app, _ = cache_app(store)

    async def user_from_header(request: Request) -> str:
        return request.headers.get("x-user", "")

    async def fake_user() -> str:
        return "fake"

    @app.get("/me", cache=CachePolicy(60, vary=["X-User"]))
    async def me(user: Annotated[str, Depends(user_from_header)]) -> dict[str, str]:
        return {"user": user}

    app.dependency_overrides[user_from_header] = fake_user
    with TestClient(app) as client:
        assert client.get("/me").json() == {"user": "fake"}


# --- Vary set by the handler ------------------------------------------------------------------------


def test_a_vary_set_by_the_handler_is_honoured_and_kept_on_hits(store: Store) -> None:
    app, _ = cache_app(store)
    calls: list[str] = []

    @app.get("/greeting", cache=CachePolicy(60, shared=True))
    async def greeting(request: Request) -> Response:
        language = request.headers.get("accept-language", "en")
        calls.append(language)
        return Response(f"hello in {language}", headers={"Vary": "Accept-Language"})

    with TestClient(app) as client:
        fr = client.get("/greeting", headers={"Accept-Language": "fr"})
        de = client.get("/greeting", headers={"Accept-Language": "de"})
        fr_hit = client.get("/greeting", headers={"Accept-Language": "fr"})
        not_modified = client.get(
            "/greeting", headers={"Accept-Language": "fr", "If-None-Match": fr.headers["etag"]}
        )
    assert fr.text == "hello in fr"
    assert de.text == "hello in de"
    assert fr_hit.text == "hello in fr"
    assert "age" in fr_hit.headers
    assert fr_hit.headers["vary"] == "Accept-Language"
    assert not_modified.status_code == 304
    assert not_modified.headers["vary"] == "Accept-Language"
    assert calls == ["fr", "de"]


def test_a_vary_set_through_an_injected_response_is_honoured(store: Store) -> None:
    app, _ = cache_app(store)
    calls: list[str] = []

    @app.get("/greeting", cache=CachePolicy(60, shared=True))
    async def greeting(request: Request, response: Response) -> dict[str, str]:
        response.headers["Vary"] = "Accept-Language"
        language = request.headers.get("accept-language", "en")
        calls.append(language)
        return {"language": language}

    with TestClient(app) as client:
        client.get("/greeting", headers={"Accept-Language": "fr"})
        de = client.get("/greeting", headers={"Accept-Language": "de"})
        hit = client.get("/greeting", headers={"Accept-Language": "de"})
    assert de.json() == hit.json() == {"language": "de"}
    assert hit.headers["vary"] == "Accept-Language"
    assert calls == ["fr", "de"]


def test_vary_star_is_never_stored(store: Store) -> None:
    app, _ = cache_app(store)
    calls: list[int] = []

    @app.get("/page", cache=60)
    async def page() -> Response:
        calls.append(1)
        return Response("x", headers={"Vary": "*"})

    with TestClient(app) as client:
        client.get("/page")
        client.get("/page")
    assert calls == [1, 1]


# --- background tasks --------------------------------------------------------------------------------


def test_a_hit_keeps_the_background_tasks_dependencies_added(store: Store) -> None:
    app, _ = cache_app(store)
    audited: list[str] = []

    async def audit(background: BackgroundTasks) -> None:
        background.add_task(audited.append, "seen")

    @app.get("/page", cache=60, dependencies=[Depends(audit)])
    async def page() -> dict[str, int]:
        return {"n": 1}

    with TestClient(app) as client:
        client.get("/page")
        assert "age" in client.get("/page").headers
    assert audited == ["seen", "seen"]


# --- invalidation --------------------------------------------------------------------------------------


def test_invalidate_drops_every_variant_of_the_parameters(store: Store) -> None:
    app, cache = cache_app(store)
    oauth2 = OAuth2PasswordBearer(tokenUrl="/token")
    calls: list[tuple[int, str]] = []

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int, token: Annotated[str, Depends(oauth2)]) -> dict[str, Any]:
        calls.append((item_id, token))
        return {"item_id": item_id, "for": token}

    with TestClient(app) as client:
        for token in ("alice-token", "bob-token"):
            client.get("/items/1", headers=bearer(token))
            client.get("/items/2", headers=bearer(token))
        portal(client).call(lambda: cache.invalidate(read_item, item_id=1))
        for token in ("alice-token", "bob-token"):
            client.get("/items/1", headers=bearer(token))
            client.get("/items/2", headers=bearer(token))
    recomputed = calls[4:]
    assert recomputed == [(1, "alice-token"), (1, "bob-token")]  # item 2 still cached


def test_invalidate_drops_every_query_of_the_path_parameters(store: Store) -> None:
    app, cache = cache_app(store)
    calls: list[tuple[int, str]] = []

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int, q: str = "") -> dict[str, Any]:
        calls.append((item_id, q))
        return {"item_id": item_id, "q": q}

    @app.get("/items", cache=60)
    async def list_items(page: int = 1) -> dict[str, int]:
        calls.append((0, str(page)))
        return {"page": page}

    urls = ["/items/3", "/items/3?q=a", "/items/4?q=a", "/items", "/items?page=2"]
    with TestClient(app) as client:
        for url in urls:
            client.get(url)
        portal(client).call(lambda: cache.invalidate(read_item, item_id=3))
        portal(client).call(lambda: cache.invalidate(list_items))
        for url in urls:
            client.get(url)
    assert calls[5:] == [(3, ""), (3, "a"), (0, "1"), (0, "2")]  # /items/4 stayed cached


def test_invalidate_reports_a_wrong_call_in_the_handlers_terms() -> None:
    app, cache = cache_app(MemoryStore())

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int, q: str = "") -> dict[str, int]:
        return {"item_id": item_id}

    async def uncached() -> None:
        pass

    with pytest.raises(TypeError, match=r"no parameter named 'itemid' \(its parameters: item_id, q\)"):
        anyio.run(lambda: cache.invalidate(read_item, itemid=1))
    with pytest.raises(TypeError, match=r"parameter 'item_id': Expected `int`, got `str`") as info:
        anyio.run(lambda: cache.invalidate(read_item, item_id="x"))
    assert "f0" not in str(info.value)
    with pytest.raises(TypeError, match="parameter 'item_id' is required"):
        anyio.run(lambda: cache.invalidate(read_item))
    with pytest.raises(ValueError, match="uncached is not a cached route"):
        anyio.run(lambda: cache.invalidate(uncached))


@pytest.mark.anyio
async def test_a_response_computed_before_an_invalidation_is_never_served_after_it() -> None:
    app, cache = cache_app(MemoryStore())
    version = {"value": 1}
    started, release = anyio.Event(), anyio.Event()

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int) -> dict[str, int]:
        value = version["value"]
        if value == 1:
            started.set()
            await release.wait()
        return {"version": value}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        results: list[Any] = []

        async def slow() -> None:
            results.append((await client.get("/items/1")).json())

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await started.wait()
            version["value"] = 2  # the update...
            await cache.invalidate(read_item, item_id=1)  # ...and its invalidation
            release.set()
        assert results == [{"version": 1}]  # the slow request saw the old data
        assert (await client.get("/items/1")).json() == {"version": 2}


# --- headers the handler sets --------------------------------------------------------------------


def test_the_handlers_own_cache_control_is_kept_once_on_misses_and_hits(store: Store) -> None:
    app, _ = cache_app(store)

    @app.get("/injected", cache=60)
    async def injected(response: Response) -> dict[str, int]:
        response.headers["Cache-Control"] = "public, max-age=5"
        return {"a": 1}

    @app.get("/returned", cache=60)
    async def returned() -> Response:
        return Response("x", headers={"Cache-Control": "no-cache"})

    @app.get("/private", cache=60, dependencies=[Depends(OAuth2PasswordBearer(tokenUrl="/t"))])
    async def private(response: Response) -> dict[str, int]:
        response.headers["Cache-Control"] = "public, max-age=5"
        return {"a": 1}

    with TestClient(app) as client:
        for path, expected in [
            ("/injected", "public, max-age=5"),
            ("/returned", "no-cache"),
            ("/private", "private, max-age=5"),
        ]:
            headers = bearer("t") if path == "/private" else {}  # only there is it keyed
            miss = client.get(path, headers=headers)
            hit = client.get(path, headers=headers)
            assert "age" in hit.headers, path
            assert miss.headers.get_list("cache-control") == [expected], path
            assert hit.headers.get_list("cache-control") == [expected], path


def test_headers_the_handler_sets_on_an_injected_response_are_replayed(store: Store) -> None:
    app, _ = cache_app(store)

    async def stamp(response: Response) -> None:
        response.headers["X-Per-Request"] = "dep"

    @app.get("/page", cache=60, dependencies=[Depends(stamp)])
    async def page(response: Response) -> dict[str, int]:
        response.headers["Content-Language"] = "fr"
        return {"a": 1}

    with TestClient(app) as client:
        miss = client.get("/page")
        hit = client.get("/page")
    assert "age" in hit.headers
    for response in (miss, hit):
        assert response.headers.get_list("content-language") == ["fr"]
        assert response.headers.get_list("x-per-request") == ["dep"]  # the dependency's, set again


# --- second attack review -------------------------------------------------------------------------


def test_a_scheme_subclass_reading_its_own_way_is_not_keyed_on_the_parents_guess() -> None:
    app, _ = cache_app(MemoryStore())

    class CookieOrBearer(HTTPBearer):
        async def __call__(self, request: Request) -> Any:  # type: ignore[override]
            creds = await super().__call__(request)
            return creds.credentials if creds else request.cookies.get("tok")

    with pytest.raises(RouteConfigError, match="CookieOrBearer"):

        @app.get("/me", cache=60)
        async def me(tok: Annotated[str | None, Depends(CookieOrBearer(auto_error=False))]) -> dict[str, Any]:
            return {"user": tok}

    class RenamedHeader(APIKeyHeader):  # only __init__ differs: still the built-in reader
        def __init__(self) -> None:
            super().__init__(name="X-Key")

    @app.get("/mine", cache=60)
    async def mine(key: Annotated[str, Depends(RenamedHeader())]) -> dict[str, str]:
        return {"owner": key}

    with TestClient(app) as client:
        assert client.get("/mine", headers={"X-Key": "a"}).json() == {"owner": "a"}
        assert client.get("/mine", headers={"X-Key": "b"}).json() == {"owner": "b"}


def test_only_the_toolkits_rate_limit_is_cache_neutral() -> None:
    app, _ = cache_app(MemoryStore())

    class Claims:
        cache_neutral = True

        async def __call__(self, request: Request) -> None:
            request.state.user = request.headers.get("authorization")

    async def me() -> dict[str, str]:
        return {}

    with pytest.raises(RouteConfigError, match="Claims"):
        app.add_api_route("/me", me, cache=60, dependencies=[Depends(Claims())])


def test_two_renderings_of_one_instant_are_two_entries(store: Store) -> None:
    import datetime

    app, _ = cache_app(store)

    @app.get("/at", cache=60)
    async def at(when: datetime.datetime) -> dict[str, str]:
        return {"when": when.isoformat()}

    with TestClient(app) as client:
        paris = client.get("/at", params={"when": "2020-01-01T01:00:00+01:00"}).json()
        utc = client.get("/at", params={"when": "2020-01-01T00:00:00+00:00"}).json()
    assert paris == {"when": "2020-01-01T01:00:00+01:00"}
    assert utc == {"when": "2020-01-01T00:00:00+00:00"}


def test_an_entry_lives_no_longer_than_the_handlers_own_max_age(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hit older than the max-age it carries would reach the client already stale."""
    import toolkit.cache as cache_module
    import toolkit.sessions._memory as memory_module

    clock = patch_clock(monkeypatch, cache_module, memory_module)
    app, _ = cache_app(MemoryStore())
    calls: list[int] = []

    @app.get("/short", cache=60)
    async def short(response: Response) -> dict[str, int]:
        calls.append(1)
        response.headers["Cache-Control"] = "public, max-age=5"
        return {"call": len(calls)}

    with TestClient(app) as client:
        assert client.get("/short").json() == {"call": 1}
        clock.now += 4
        hit = client.get("/short")
        assert hit.json() == {"call": 1}
        assert hit.headers["cache-control"] == "public, max-age=5"
        assert hit.headers["age"] == "4"
        clock.now += 2  # 6 s: past the handler's max-age, though within the route's 60
        assert client.get("/short").json() == {"call": 2}
