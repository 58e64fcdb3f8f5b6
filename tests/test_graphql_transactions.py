"""toolkit.graphql: when the context's dependencies commit, roll back and run, seen from the client.

As on a route, a ``scope="function"`` generator dependency (a session that commits after its
``yield``) is closed when the operation has run, *before* the response is sent: a commit that
fails is the response. Deliberate errors (a ``GraphQLError``, an ``HTTPException``) are answers,
not failures: the transaction commits what the other fields did. An unexpected exception rolls it
back, and a mutation's ``data`` is then ``null`` (nothing it answered was written). The body is read
whole before any dependency runs, and the App's own dependencies cover the mount.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import pytest
import strawberry
from graphql import GraphQLError
from starlette.types import Message
from strawberry.types import Info

import toolkit._graphql_limits as limits
from toolkit import App, Depends, Header, HTTPException, JSONResponse, Request, Response
from toolkit.graphql import GraphQL
from toolkit.testing import TestClient

JSON = {"Content-Type": "application/json"}


class CommitFailed(Exception):
    """What a database raises at the commit (a constraint checked at the end)."""


class Store:
    """A transactional store: writes are staged per request, kept only when committed."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.events: list[str] = []
        self.fail_commit = False


store = Store()


async def session() -> AsyncIterator[list[str]]:
    staged: list[str] = []
    store.events.append("begin")
    try:
        yield staged
    except Exception as exc:
        store.events.append(f"rollback {type(exc).__name__}")
        raise
    if store.fail_commit:
        store.events.append("commit failed")
        raise CommitFailed("duplicate key value violates unique constraint")
    store.rows += staged
    store.events.append("commit")


SessionDep = Annotated[list[str], Depends(session, scope="function")]


async def get_context(staged: SessionDep) -> dict[str, Any]:
    return {"staged": staged}


@strawberry.type
class Query:
    @strawberry.field
    def rows(self) -> list[str]:
        return list(store.rows)

    @strawberry.field
    def broken(self) -> str | None:  # nullable: an error leaves the other fields' data
        raise RuntimeError("a bug")


@strawberry.type
class Mutation:
    @strawberry.mutation
    def add(self, info: Info, name: str) -> str:
        info.context["staged"].append(name)
        return name

    @strawberry.mutation
    def refuse(self, name: str) -> str | None:
        raise GraphQLError(f"{name} is too long")

    @strawberry.mutation
    def forbid(self) -> str | None:
        raise HTTPException(403, "Not yours")

    @strawberry.mutation
    def crash(self, info: Info) -> str | None:
        info.context["staged"].append("half")
        raise RuntimeError("a bug after a write")


schema = strawberry.Schema(query=Query, mutation=Mutation)


def commit_failed(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": "Conflict with existing data"}, status_code=409)


def make_app(**options: Any) -> App:
    app = App(exception_handlers={CommitFailed: commit_failed}, **options)
    app.mount("/graphql", GraphQL(schema, context_getter=get_context))
    return app


@pytest.fixture(autouse=True)
def fresh_store() -> None:
    store.__init__()  # type: ignore[misc]


@pytest.fixture
def client() -> Any:
    with TestClient(make_app()) as client:
        yield client


def gql(client: TestClient, query: str, **headers: str) -> Any:
    return client.post("/graphql", json={"query": query}, headers=headers or None)


def test_a_mutation_commits_before_the_response_is_sent(client: TestClient) -> None:
    response = gql(client, 'mutation { add(name: "a") }')
    assert response.json() == {"data": {"add": "a"}}
    assert store.events == ["begin", "commit"]
    assert store.rows == ["a"]


def test_a_commit_that_fails_is_the_response_not_a_200(client: TestClient) -> None:
    store.fail_commit = True
    response = gql(client, 'mutation { add(name: "a") }')
    # The app's handler for the commit's error answers, as on a route: never a 200 for a lost write.
    assert (response.status_code, response.json()) == (409, {"detail": "Conflict with existing data"})
    assert store.rows == []


def test_a_deliberate_error_is_an_answer_the_other_fields_are_committed(client: TestClient) -> None:
    body = gql(client, 'mutation { a: add(name: "two") b: refuse(name: "toolong") }').json()
    assert body["data"] == {"a": "two", "b": None}
    assert body["errors"][0]["message"] == "toolong is too long"
    assert store.rows == ["two"]  # what the client was told was written, was
    body = gql(client, 'mutation { a: add(name: "three") b: forbid }').json()
    assert body["data"] == {"a": "three", "b": None}
    assert body["errors"][0]["extensions"]["status"] == 403
    assert store.rows == ["two", "three"]
    assert "rollback" not in " ".join(store.events)


def test_an_unexpected_error_rolls_back_and_the_mutation_answers_no_data(client: TestClient) -> None:
    body = gql(client, 'mutation { a: add(name: "x") b: crash }').json()
    assert body["data"] is None  # "x" was not written: the answer does not say it was
    assert body["errors"][0]["message"] == "Internal server error"
    assert store.rows == []
    assert store.events == ["begin", "rollback RuntimeError"]


def test_an_unexpected_error_in_a_query_keeps_the_other_fields(client: TestClient) -> None:
    store.rows.append("kept")
    body = gql(client, "{ rows broken }").json()
    assert body["data"] == {"rows": ["kept"], "broken": None}  # a read: nothing to take back
    assert store.events == ["begin", "rollback RuntimeError"]


def test_the_apps_dependencies_cover_the_mount() -> None:
    def api_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
        if x_api_key != "s3cret":
            raise HTTPException(401, "Invalid API key")

    with TestClient(make_app(dependencies=[Depends(api_key)])) as client:
        refused = gql(client, "{ rows }")
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["message"] == "Invalid API key"
        assert store.events == []  # refused before the session opened
        assert gql(client, "{ rows }", **{"X-API-Key": "s3cret"}).json() == {"data": {"rows": []}}


def test_the_views_own_dependencies_run_first() -> None:
    calls: list[str] = []

    def audit(request: Request) -> None:
        calls.append(request.method)

    def tenant(x_tenant: Annotated[str, Header()]) -> None:
        calls.append(x_tenant)

    app = App()
    app.mount("/graphql", GraphQL(schema, dependencies=[Depends(audit), Depends(tenant)]))
    with TestClient(app) as client:
        assert gql(client, "{ rows }").status_code == 422  # the required header is missing
        assert gql(client, "{ rows }", **{"X-Tenant": "t1"}).json() == {"data": {"rows": []}}
    assert calls == ["POST", "POST", "t1"]


def test_a_context_object_gets_request_response_and_background_tasks() -> None:
    class Context:  # strawberry's BaseContext pattern, without FastAPI
        def __init__(self, user: str) -> None:
            self.user = user
            self.request: Request | None = None
            self.response: Response | None = None
            self.background_tasks: Any = None

    def user_context(x_user: Annotated[str, Header()] = "anonymous") -> Context:
        return Context(x_user)

    @strawberry.type
    class WhoQuery:
        @strawberry.field
        def who(self, info: Info) -> str:
            info.context.response.headers["X-Seen"] = info.context.request.url.path
            return str(info.context.user)

    app = App()
    app.mount("/graphql", GraphQL(strawberry.Schema(query=WhoQuery), context_getter=user_context))
    with TestClient(app) as client:
        response = gql(client, "{ who }", **{"X-User": "ada"})
    assert response.json() == {"data": {"who": "ada"}}
    assert response.headers["X-Seen"] == "/graphql"


def test_the_body_is_read_whole_before_any_dependency_runs() -> None:
    """A client trickling its body in holds nothing (no connection, no lock) meanwhile."""
    app = make_app()
    chunks = [b'{"query": ', b'"mutation { add(', b'name: \\"a\\") }"}']

    async def receive() -> Message:
        if chunks:
            store.events.append("chunk")
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "asgi": {"version": "3.0"},
        "state": {},
    }
    with TestClient(app) as client:
        client.portal.call(app, scope, receive, send)
    assert store.events == ["chunk", "chunk", "chunk", "begin", "commit"]
    assert sent[0]["status"] == 200


def test_fragment_spreads_are_measured_once(monkeypatch: pytest.MonkeyPatch, client: TestClient) -> None:
    """``fragment F1 on Query { ...F2 ...F2 }``, 30 levels: 2^30 paths, measured in linear time
    (strawberry's own limiters walked every path: seconds at 20 levels, the loop blocked)."""
    levels = 30
    fragments = " ".join(f"fragment F{k} on Query {{ ...F{k + 1} ...F{k + 1} }}" for k in range(levels))
    document = f"query {{ ...F0 }} {fragments} fragment F{levels} on Query {{ rows }}"
    calls = 0
    measure = limits._Measurer.selection_set

    def counted(self: limits._Measurer, node: Any) -> Any:
        nonlocal calls
        calls += 1
        return measure(self, node)

    monkeypatch.setattr(limits._Measurer, "selection_set", counted)
    assert gql(client, document).json() == {"data": {"rows": []}}
    assert calls <= 2 * (levels + 2)  # once per selection set of the document


def test_aliases_are_counted_through_every_spread(client: TestClient) -> None:
    """Two aliases in a fragment spread 2^4 ways are 32 aliases: over the limit of 15."""
    chain = " ".join(f"fragment F{k} on Query {{ ...F{k + 1} ...F{k + 1} }}" for k in range(4))
    document = f"query {{ ...F0 }} {chain} fragment F4 on Query {{ a: rows b: rows }}"
    errors = gql(client, document).json()["errors"]
    assert errors[0]["message"] == "32 aliases found. Allowed: 15"


# --- the second attack round ------------------------------------------------------------------


def test_the_limits_hold_whatever_request_the_context_carries() -> None:
    """A context getter returning a "request" of its own (in a mapping or as an object's attribute)
    does not switch the limits and the introspection rule off: the view keeps its own record."""

    class Own:
        def __init__(self) -> None:
            self.request = {"path": "/elsewhere"}  # not the view's Request
            self.response: Any = None
            self.background_tasks: Any = None

    getters: list[Any] = [lambda: {"request": {"path": "/elsewhere"}}, Own]
    for getter in getters:
        app = App()
        app.mount("/graphql", GraphQL(schema, context_getter=getter))
        with TestClient(app) as client:
            aliases = "{ " + " ".join(f"a{i}: rows" for i in range(16)) + " }"
            assert gql(client, aliases).json()["errors"][0]["message"] == "16 aliases found. Allowed: 15"
            refused = gql(client, "{ __schema { queryType { name } } }").json()
            assert "introspection" in refused["errors"][0]["message"].lower()


def test_aliases_under_introspection_fields_count() -> None:
    app = App()
    app.mount("/graphql", GraphQL(schema, introspection=True))
    aliased = " ".join(f"t{i}: types {{ name }}" for i in range(16))
    with TestClient(app) as client:
        assert "errors" not in gql(client, "{ __schema { types { name } } }").json()
        errors = gql(client, f"{{ __schema {{ {aliased} }} }}").json()["errors"]
    assert errors[0]["message"] == "16 aliases found. Allowed: 15"


def test_background_tasks_of_a_rolled_back_mutation_do_not_run() -> None:
    sent: list[str] = []

    @strawberry.type
    class NotifyMutation:
        @strawberry.mutation
        def notify(self, info: Info, name: str) -> str | None:
            info.context["staged"].append(name)
            info.context["background_tasks"].add_task(sent.append, f"email about {name}")
            return name

        @strawberry.mutation
        def crash(self) -> str | None:
            raise RuntimeError("a bug")

    app = App()
    notify_schema = strawberry.Schema(query=Query, mutation=NotifyMutation)
    app.mount("/graphql", GraphQL(notify_schema, context_getter=get_context))
    with TestClient(app) as client:
        assert gql(client, 'mutation { n: notify(name: "r1") c: crash }').json()["data"] is None
        assert sent == []  # nothing was written: no email about it
        assert gql(client, 'mutation { n: notify(name: "r2") }').json() == {"data": {"n": "r2"}}
    assert sent == ["email about r2"]
    assert store.rows == ["r2"]


def test_the_default_body_limit_is_sized_for_documents() -> None:
    """1 MiB by default (read whole, before authentication), never above the App's own limit."""
    padded = {"query": "{ rows }", "variables": {"pad": "x" * (1024 * 1024)}}
    with TestClient(make_app()) as client:
        assert client.post("/graphql", json=padded).status_code == 413
    app = App()
    app.mount("/graphql", GraphQL(schema, max_body_size=None))  # None: the App's (10 MiB)
    with TestClient(app) as client:
        assert client.post("/graphql", json=padded).json() == {"data": {"rows": []}}
    small = App(max_body_size=1000)
    small.mount("/graphql", GraphQL(schema))
    with TestClient(small) as client:
        assert (
            client.post("/graphql", json={"query": "{ rows }", "variables": {"p": "x" * 2000}}).status_code
            == 413
        )


def test_only_unexpected_errors_are_logged_as_errors(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    gql(client, 'mutation { refuse(name: "x") }')
    gql(client, "mutation { forbid }")
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []  # answers, not failures
    gql(client, "{ broken }")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
