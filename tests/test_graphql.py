"""toolkit.graphql: strawberry mounted on an App, through HTTP (the lifespan runs).

The context getter is a toolkit dependency: a user from a header (401 without one), a generator
resource whose cleanup is recorded, an app-scoped value, the lifespan state.
"""

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
import strawberry
from graphql import GraphQLError, get_introspection_query
from strawberry.types import Info

from toolkit import App, Depends, Header, HTTPException, Request, RouteConfigError
from toolkit.graphql import GraphQL
from toolkit.testing import TestClient

ALICE = {"Authorization": "Bearer alice"}
BOB = {"Authorization": "Bearer bob"}
events: list[str] = []
# strawberry counts depth from 0 at the operation's fields: max_depth=10 allows 11 levels of fields.
DEPTH_ALLOWED = 11


def current_user(authorization: Annotated[str | None, Header()] = None) -> str:
    if authorization is None or not authorization.startswith("Bearer "):
        raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return authorization.removeprefix("Bearer ")


async def open_counter() -> AsyncIterator[list[str]]:
    events.append("counter opened")
    yield []
    events.append("counter closed")


async def transaction(user: Annotated[str, Depends(current_user)]) -> AsyncIterator[str]:
    events.append(f"begin {user}")
    try:
        yield f"tx-{user}"
    except Exception as exc:
        events.append(f"rollback {type(exc).__name__}")
        raise
    events.append(f"commit {user}")


async def get_context(
    request: Request,
    user: Annotated[str, Depends(current_user)],
    tx: Annotated[str, Depends(transaction)],
    created: Annotated[list[str], Depends(open_counter, scope="app")],
) -> dict[str, Any]:
    return {"user": user, "tx": tx, "created": created}


@strawberry.type
class Node:
    name: str

    @strawberry.field
    def child(self) -> "Node":
        return Node(name=self.name + "+")


@strawberry.type
class Query:
    @strawberry.field
    def me(self, info: Info) -> str:
        return str(info.context["user"])

    @strawberry.field
    def tx(self, info: Info) -> str:
        return str(info.context["tx"])

    @strawberry.field
    def greeting(self, info: Info) -> str:
        return str(info.context["request"].state.greeting)  # the lifespan's state

    @strawberry.field
    def created(self, info: Info) -> list[str]:
        return list(info.context["created"])

    @strawberry.field
    def node(self) -> Node:
        return Node(name="root")

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("SELECT password_hash FROM users WHERE id = 1")

    @strawberry.field
    def refused(self) -> str:
        raise GraphQLError("You may not", extensions={"code": "FORBIDDEN"})

    @strawberry.field
    def not_found(self) -> str:
        raise HTTPException(404, "No such thing")


@strawberry.type
class Mutation:
    @strawberry.mutation
    def create(self, info: Info, name: str) -> str:
        info.context["created"].append(f"{info.context['user']}:{name}")
        info.context["response"].headers["X-Created"] = name
        return name


schema = strawberry.Schema(query=Query, mutation=Mutation)


def make_app(*, debug: bool = False, **options: Any) -> App:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello from the lifespan"}

    app = App(debug=debug, lifespan=lifespan)
    app.mount("/graphql", GraphQL(schema, context_getter=get_context, **options))
    return app


@pytest.fixture(autouse=True)
def fresh_events() -> None:
    events.clear()


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as client:
        yield client


def gql(client: TestClient, query: str, headers: dict[str, str] | None = None, **variables: Any) -> Any:
    body: dict[str, Any] = {"query": query}
    if variables:
        body["variables"] = variables
    return client.post("/graphql", json=body, headers=ALICE if headers is None else headers)


# --- what a user writes ---------------------------------------------------------------------------


def test_query_gets_the_context_from_dependencies(client: TestClient) -> None:
    response = gql(client, "{ me tx greeting }")
    assert response.status_code == 200
    assert response.json() == {
        "data": {"me": "alice", "tx": "tx-alice", "greeting": "hello from the lifespan"}
    }
    # The app-scoped value is made at its first use (within the lifespan); the transaction is
    # committed after the response.
    assert events == ["begin alice", "counter opened", "commit alice"]


def test_mutation_and_the_response_in_the_context(client: TestClient) -> None:
    response = gql(client, "mutation Create($name: String!) { create(name: $name) }", name="first")
    assert response.json() == {"data": {"create": "first"}}
    assert response.headers["x-created"] == "first"
    assert gql(client, "{ created }", BOB).json() == {"data": {"created": ["alice:first"]}}  # app-scoped


def test_unauthenticated_is_a_401_with_graphql_errors(client: TestClient) -> None:
    response = gql(client, 'mutation { create(name: "x") }', headers={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "errors": [{"message": "Not authenticated", "extensions": {"code": "UNAUTHENTICATED", "status": 401}}]
    }
    assert "begin" not in " ".join(events)  # refused before the transaction, and nothing created
    assert gql(client, "{ created }").json() == {"data": {"created": []}}


def test_each_user_sees_their_own_context(client: TestClient) -> None:
    assert gql(client, "{ me }", ALICE).json() == {"data": {"me": "alice"}}
    assert gql(client, "{ me }", BOB).json() == {"data": {"me": "bob"}}


def test_query_over_get(client: TestClient) -> None:
    response = client.get("/graphql", params={"query": "{ me }"}, headers=ALICE)
    assert response.json() == {"data": {"me": "alice"}}


def test_dependency_overrides_apply_to_the_context() -> None:
    app = make_app()
    with TestClient(app) as client:
        assert gql(client, "{ me }").json() == {"data": {"me": "alice"}}
        app.dependency_overrides[current_user] = lambda: "mallory"
        assert gql(client, "{ me tx }", headers={}).json() == {"data": {"me": "mallory", "tx": "tx-mallory"}}
        app.dependency_overrides.clear()
        assert gql(client, "{ me }", headers={}).status_code == 401


def test_a_resolver_error_is_thrown_into_generator_dependencies(client: TestClient) -> None:
    response = gql(client, "{ me broken }")
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert "rollback RuntimeError" in events
    assert "commit alice" not in events


def test_an_http_error_before_the_query_also_closes_the_dependencies(client: TestClient) -> None:
    response = client.post(
        "/graphql", content=b"{not json", headers={**ALICE, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Unable to parse request body as JSON"
    assert events[-1] == "rollback HTTPException"


def test_two_clients_in_a_row() -> None:
    app = make_app()
    for _ in range(2):  # a new event loop, a new lifespan, new app-scoped values
        with TestClient(app) as client:
            assert gql(client, 'mutation { create(name: "x") }').json() == {"data": {"create": "x"}}
            assert gql(client, "{ created greeting }").json()["data"]["created"] == ["alice:x"]
    assert events.count("counter opened") == events.count("counter closed") == 2


# --- errors: masked in production, shown in debug ---------------------------------------------------


def test_a_resolver_exception_is_masked_in_production(client: TestClient) -> None:
    body = gql(client, "{ broken }").json()
    assert body["errors"] == [
        {"message": "Internal server error", "locations": [{"line": 1, "column": 3}], "path": ["broken"]}
    ]
    assert "password_hash" not in str(body)
    assert "Traceback" not in str(body)


def test_a_resolver_exception_is_shown_in_debug() -> None:
    with TestClient(make_app(debug=True)) as client:
        body = gql(client, "{ broken }").json()
    assert body["errors"][0]["message"] == "SELECT password_hash FROM users WHERE id = 1"


def test_deliberate_errors_are_shown_in_production(client: TestClient) -> None:
    errors = gql(client, "{ refused }").json()["errors"]
    assert errors[0]["message"] == "You may not"
    assert errors[0]["extensions"] == {"code": "FORBIDDEN"}
    errors = gql(client, "{ notFound }").json()["errors"]
    assert errors[0]["message"] == "No such thing"
    assert errors[0]["extensions"] == {"code": "NOT_FOUND", "status": 404}


# --- hostile input -------------------------------------------------------------------------------


def test_a_body_over_the_app_limit_is_413(client: TestClient) -> None:
    big = b'{"query": "' + b" " * (10 * 1024 * 1024) + b'{ me }"}'
    response = client.post("/graphql", content=big, headers={**ALICE, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert events == []  # refused on its Content-Length: no dependency ran


def test_a_streamed_body_over_the_limit_is_413() -> None:
    app = make_app(max_body_size=1000)

    def chunks() -> Iterator[bytes]:
        yield b'{"query": "'
        for _ in range(100):
            yield b" " * 100  # no Content-Length: counted as it arrives

    with TestClient(app) as client:
        response = client.post(
            "/graphql", content=chunks(), headers={**ALICE, "Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert events == []  # the body is read whole first: no dependency ran


def nested(depth: int) -> str:
    """``{ node { child { ... { name } } } }``: ``depth`` fields deep."""
    selection = "name"
    for _ in range(depth - 2):
        selection = f"child {{ {selection} }}"
    return f"{{ node {{ {selection} }} }}"


def test_deep_queries_are_refused(client: TestClient) -> None:
    assert "errors" not in gql(client, nested(DEPTH_ALLOWED)).json()
    errors = gql(client, nested(DEPTH_ALLOWED + 1)).json()["errors"]
    assert "exceeds maximum operation depth of 10" in errors[0]["message"]
    very_deep = nested(5000)
    response = gql(client, very_deep)
    assert response.status_code == 200
    assert response.json()["data"] is None  # a syntax error: the parser gives up, no recursion error


def test_many_aliases_are_refused(client: TestClient) -> None:
    errors = gql(client, "{ " + " ".join(f"a{i}: me" for i in range(16)) + " }").json()["errors"]
    assert "16 aliases found. Allowed: 15" in errors[0]["message"]
    errors = gql(client, "{ " + " ".join(f"a{i}: me" for i in range(1000)) + " }").json()["errors"]
    assert "more than 2000 tokens" in errors[0]["message"]


def test_limits_can_be_changed() -> None:
    with TestClient(make_app(max_aliases=None, max_tokens=None, max_depth=2)) as client:
        body = gql(client, "{ " + " ".join(f"a{i}: me" for i in range(1000)) + " }").json()
        assert body["data"]["a999"] == "alice"
        assert "errors" not in gql(client, nested(3)).json()
        assert "maximum operation depth of 2" in gql(client, nested(4)).json()["errors"][0]["message"]


def test_malformed_json_is_400_not_500(client: TestClient) -> None:
    for body in [b"{", b"[" * 100_000, b'{"query": 1}', b'"just a string"', b"\xff\xfe"]:
        response = client.post(
            "/graphql", content=body, headers={**ALICE, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, body[:20]
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    response = client.get("/graphql", params={"query": "{ me }", "variables": "{"}, headers=ALICE)
    assert response.status_code == 400


def test_mutation_over_get_is_refused(client: TestClient) -> None:
    response = client.get("/graphql", params={"query": 'mutation { create(name: "x") }'}, headers=ALICE)
    assert response.status_code == 400
    assert "mutations are not allowed when using GET" in response.json()["errors"][0]["message"]
    assert gql(client, "{ created }").json() == {"data": {"created": []}}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b'query=mutation{create(name:"csrf")}'),
        ("text/plain", b'{"query": "mutation { create(name: \\"csrf\\") }"}'),
        ("text/plain; charset=application/json", b'{"query": "mutation { create(name: \\"csrf\\") }"}'),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n--x--',
        ),
    ],
)
def test_what_a_cross_site_form_can_send_is_415(client: TestClient, content_type: str, body: bytes) -> None:
    response = client.post("/graphql", content=body, headers={**ALICE, "Content-Type": content_type})
    assert response.status_code == 415
    assert gql(client, "{ created }").json() == {"data": {"created": []}}


def test_other_methods_are_405(client: TestClient) -> None:
    response = client.put("/graphql", json={"query": "{ me }"}, headers=ALICE)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_websockets_are_refused(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]),
    ):
        pass


def test_introspection_and_ide_only_in_debug(client: TestClient) -> None:
    errors = gql(client, "{ __schema { queryType { name } } }").json()["errors"]
    assert "introspection has been disabled" in errors[0]["message"]
    assert client.get("/graphql", headers={"Accept": "text/html"}).status_code == 404
    with TestClient(make_app(debug=True)) as debug:
        body = gql(debug, get_introspection_query()).json()  # what GraphiQL sends, within the limits
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"
        page = debug.get("/graphql", headers={"Accept": "text/html"})  # no credentials needed
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
    with TestClient(make_app(introspection=True, mask_errors=False)) as configured:
        assert "errors" not in gql(configured, "{ __schema { queryType { name } } }").json()
        assert "password_hash" in gql(configured, "{ broken }").text


# --- registration ---------------------------------------------------------------------------------


def test_a_context_getter_reading_a_body_is_refused() -> None:
    def reads_body(payload: dict[str, int]) -> dict[str, Any]:
        return {}

    with pytest.raises(RouteConfigError, match="cannot take a body"):
        GraphQL(schema, context_getter=reads_body)

    async def generator() -> AsyncIterator[dict[str, Any]]:
        yield {}

    with pytest.raises(RouteConfigError, match="cannot be a generator"):
        GraphQL(schema, context_getter=generator)


def test_no_context_getter_and_a_bad_header_value() -> None:
    app = App()
    app.mount("/plain", GraphQL(schema))

    def tenant(x_tenant: Annotated[int, Header()]) -> dict[str, Any]:
        return {"user": f"tenant {x_tenant}"}

    app.mount("/tenant", GraphQL(schema, context_getter=tenant))
    with TestClient(app) as client:
        response = client.post("/plain", json={"query": "{ node { name } }"})
        assert response.json() == {"data": {"node": {"name": "root"}}}
        assert client.post("/tenant", json={"query": "{ me }"}, headers={"X-Tenant": "7"}).json() == {
            "data": {"me": "tenant 7"}
        }
        response = client.post("/tenant", json={"query": "{ me }"}, headers={"X-Tenant": "seven"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["extensions"]["errors"][0]["loc"] == ["header", "x-tenant"]
