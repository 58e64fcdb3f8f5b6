"""Routing through the public API: matching, converters, 404/405/HEAD, redirects, nesting, mounts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pytest
from starlette.convertors import Convertor
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from toolkit import App, Depends, HTTPException, Path, Request, Response, RouteConfigError, Router, WebSocket
from toolkit.routing import NoMatchFound


class HexConvertor(Convertor[int]):
    regex = "[0-9a-f]+"

    def convert(self, value: str) -> int:
        return int(value, 16)

    def to_string(self, value: int) -> str:
        return format(value, "x")


# --- static and dynamic routes, converters ---------------------------------------------------


def _typed(value: Any) -> list[Any]:
    return [str(value) if isinstance(value, uuid.UUID) else value, type(value).__name__]


OID = uuid.UUID("8c5b0e3e-3f4a-4e8b-9d7e-1f2a3b4c5d6e")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/", ["root", "str"]),
        ("/users/ada/profile", ["ada", "str"]),
        ("/users/ada", None),
        ("/users/a/b/profile", None),
        ("/int/42", [42, "int"]),
        ("/float/1.5", [1.5, "float"]),
        ("/str/hello", ["hello", "str"]),
        ("/path/a/b/c.txt", ["a/b/c.txt", "str"]),
        (f"/uuid/{OID}", [str(OID), "UUID"]),
        ("/int/abc", None),
        ("/int/-1", None),
        ("/int/1.5", None),
        ("/int/", None),
        ("/float/x", None),
        ("/str/a/b", None),  # str never spans a slash
        ("/uuid/not-a-uuid", None),
    ],
)
def test_static_dynamic_and_converters(client_factory: Any, url: str, expected: list[Any] | None) -> None:
    app = App(redirect_slashes=False)

    @app.get("/")
    async def root() -> list[Any]:
        return _typed("root")

    @app.get("/users/{v}/profile")
    async def profile(v: str) -> list[Any]:
        return _typed(v)

    @app.get("/int/{v:int}")
    async def int_route(v: int) -> list[Any]:
        return _typed(v)

    @app.get("/float/{v:float}")
    async def float_route(v: float) -> list[Any]:
        return _typed(v)

    @app.get("/str/{v:str}")
    async def str_route(v: str) -> list[Any]:
        return _typed(v)

    @app.get("/path/{v:path}")
    async def path_route(v: str) -> list[Any]:
        return _typed(v)

    @app.get("/uuid/{v:uuid}")
    async def uuid_route(v: uuid.UUID) -> list[Any]:
        return _typed(v)

    response = client_factory(app).get(url)
    if expected is None:
        assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    else:
        assert response.json() == expected


def test_custom_converter_on_app_does_not_leak(client_factory: Any) -> None:
    app = App()
    app.register_converter("hex", HexConvertor())

    @app.get("/colors/{n:hex}", name="color")
    async def color(n: int) -> dict[str, int]:
        return {"n": n}

    client = client_factory(app)
    assert client.get("/colors/ff").json() == {"n": 255}
    assert client.get("/colors/zz").status_code == 404
    assert app.url_path_for("color", n=255) == "/colors/ff"

    other = App()
    with pytest.raises(RouteConfigError, match="hex"):

        @other.get("/colors/{n:hex}")
        async def other_color(n: int) -> int:
            return n


def test_custom_converter_on_router(client_factory: Any) -> None:
    router = Router(prefix="/r")
    router.register_converter("hex", HexConvertor())

    @router.get("/{n:hex}")
    async def hexed(n: int) -> int:
        return n

    app = App()
    app.include_router(router)
    assert client_factory(app).get("/r/1f").json() == 31
    with pytest.raises(RouteConfigError):
        app.get("/x/{n:hex}")(hexed)  # the router's converter is not the app's


# --- precedence and backtracking -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [("/p/me", "static"), ("/p/42", "int:42"), ("/p/bob", "str:bob"), ("/p/a/b", "path:a/b")],
)
def test_precedence_static_typed_str_path(client_factory: Any, url: str, expected: str) -> None:
    app = App()

    # Registered least specific first, so precedence cannot come from registration order.
    @app.get("/p/{rest:path}")
    async def by_path(rest: str) -> str:
        return f"path:{rest}"

    @app.get("/p/{name}")
    async def by_str(name: str) -> str:
        return f"str:{name}"

    @app.get("/p/{num:int}")
    async def by_int(num: int) -> str:
        return f"int:{num}"

    @app.get("/p/me")
    async def by_static() -> str:
        return "static"

    assert client_factory(app).get(url).json() == expected


def test_backtracks_when_specific_branch_dead_ends(client_factory: Any) -> None:
    app = App()

    @app.get("/a/static/x")
    async def static_x() -> str:
        return "static-x"

    @app.get("/a/{p}/y")
    async def param_y(p: str) -> str:
        return f"param-y:{p}"

    @app.get("/b/{n:int}/x")
    async def int_x(n: int) -> str:
        return "int-x"

    @app.get("/b/{rest:path}")
    async def b_rest(rest: str) -> str:
        return f"rest:{rest}"

    @app.delete("/a/{p}/x")  # a less specific route serving another method
    async def delete_x(p: str) -> str:
        return f"deleted:{p}"

    client = client_factory(app)
    assert client.get("/a/static/x").json() == "static-x"
    assert client.delete("/a/static/x").json() == "deleted:static"
    assert client.get("/a/static/y").json() == "param-y:static"
    assert client.get("/b/1/x").json() == "int-x"
    assert client.get("/b/1/z").json() == "rest:1/z"


# --- 404 / 405 / HEAD ----------------------------------------------------------------------------


def test_method_not_allowed_lists_methods_across_routes(client_factory: Any) -> None:
    app = App()

    @app.get("/items/{item_id:int}")
    async def read_item(item_id: int) -> int:
        return item_id

    @app.post("/items/{name}")
    async def create_item(name: str) -> str:
        return name

    @app.api_route("/items/{key}", methods=["PATCH", "OPTIONS"])
    async def patch_item(key: str) -> str:
        return key

    @app.post("/items")
    async def create_items() -> str:
        return "ok"

    client = client_factory(app)
    response = client.put("/items/5")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed == {"GET", "HEAD", "POST", "PATCH", "OPTIONS"}
    # "abc" is not an int: only the str routes apply.
    response = client.put("/items/abc")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"POST", "PATCH", "OPTIONS"}
    response = client.delete("/items")  # a static path: one route, one method
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


def test_get_routes_answer_head(client_factory: Any) -> None:
    app = App()

    @app.get("/doc")
    async def doc() -> dict[str, str]:
        return {"text": "hello world"}

    @app.get("/created", status_code=201)
    async def created() -> dict[str, str]:
        return {"ok": "yes"}

    client = client_factory(app)
    get = client.get("/doc")
    head = client.head("/doc")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["content-type"] == "application/json"
    assert client.head("/created").status_code == 201


@pytest.mark.parametrize("head_first", [False, True])
def test_explicit_head_route_overrides_automatic(client_factory: Any, head_first: bool) -> None:
    app = App()

    async def get_thing() -> dict[str, int]:
        return {"a": 1}

    async def head_thing() -> Response:
        return Response(headers={"X-Handler": "head"})

    if head_first:
        app.head("/thing")(head_thing)
        app.get("/thing")(get_thing)
    else:
        app.get("/thing")(get_thing)
        app.head("/thing")(head_thing)

    client = client_factory(app)
    assert client.head("/thing").headers["x-handler"] == "head"
    assert client.get("/thing").json() == {"a": 1}
    assert "x-handler" not in client.get("/thing").headers


# --- trailing slash redirects --------------------------------------------------------------------


def test_trailing_slash_redirect(client_factory: Any) -> None:
    app = App()

    @app.get("/items")
    async def items() -> str:
        return "items"

    @app.get("/dir/")
    async def directory() -> str:
        return "dir"

    client = client_factory(app, follow_redirects=False)
    response = client.get("/items/?a=1&b=two")
    assert response.status_code == 307
    assert response.headers["location"] == "http://testserver/items?a=1&b=two"
    response = client.get("/dir")
    assert response.status_code == 307
    assert response.headers["location"] == "http://testserver/dir/"
    assert client_factory(app).get("/items/").json() == "items"  # following it lands on the route

    app = App(redirect_slashes=False)
    app.get("/items")(items)
    response = client_factory(app, follow_redirects=False).get("/items/")
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    assert "location" not in response.headers


@pytest.mark.parametrize(("route", "url"), [("//evil.com", "//evil.com/"), ("/\\evil.com", "/%5Cevil.com/")])
def test_no_open_redirect(client_factory: Any, route: str, url: str) -> None:
    app = App()
    # Without the guard, this route would make the slash redirect point at //evil.com.
    app.add_api_route(route, lambda: "x", name="evil")
    client = client_factory(app, follow_redirects=False)
    assert client.get("http://testserver" + url[:-1]).json() == "x"  # the route itself is reachable
    response = client.get("http://testserver" + url)
    assert response.status_code == 404
    assert "location" not in response.headers


# --- routers -------------------------------------------------------------------------------------


def test_nested_routers_prefix_tags_dependencies(client_factory: Any) -> None:
    calls: list[str] = []

    def outer_dep() -> None:
        calls.append("outer")

    def inner_dep(request: Request) -> None:
        calls.append("inner")
        if request.headers.get("x-token") != "secret":
            raise HTTPException(401, "no token")

    inner = Router(prefix="/items", tags=["items"], dependencies=[Depends(inner_dep)])

    @inner.get("/{item_id:int}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    middle = Router(prefix="/v1", tags=["v1"], dependencies=[Depends(outer_dep)])
    middle.include_router(inner, prefix="/shop")
    app = App()
    app.include_router(middle, prefix="/api", tags=["api"])

    client = client_factory(app, headers={"x-token": "secret"})
    assert client.get("/api/v1/shop/items/3").json() == {"item_id": 3}
    assert calls == ["outer", "inner"]
    assert client.get("/api/v1/shop/items/3", headers={"x-token": "bad"}).status_code == 401
    assert client.get("/v1/shop/items/3").status_code == 404
    assert client.get("/items/3").status_code == 404
    (route,) = app.routes
    assert route.path == "/api/v1/shop/items/{item_id:int}"
    assert route.tags == ["api", "v1", "items"]


def test_path_params_in_prefix(client_factory: Any) -> None:
    def known_user(user_id: int) -> None:
        if user_id != 1:
            raise HTTPException(404, "unknown user")

    router = Router(prefix="/users/{user_id:int}", dependencies=[Depends(known_user)])

    @router.get("/posts/{post_id:int}")
    async def read_post(user_id: int, post_id: int) -> dict[str, int]:
        return {"user_id": user_id, "post_id": post_id}

    @router.get("/avatar")
    async def avatar() -> str:  # the prefix parameter is read only by the dependency
        return "avatar"

    app = App()
    app.include_router(router)
    client = client_factory(app)
    assert client.get("/users/1/posts/7").json() == {"user_id": 1, "post_id": 7}
    assert client.get("/users/2/posts/7").json() == {"detail": "unknown user"}
    assert client.get("/users/1/avatar").json() == "avatar"
    assert client.get("/users/x/avatar").status_code == 404


# --- duplicates ----------------------------------------------------------------------------------


async def first_handler(item_id: int) -> int:
    return item_id


async def second_handler(item_id: int) -> int:
    return item_id


async def renamed_handler(other: int) -> int:
    assert isinstance(other, int)
    return other


@pytest.mark.parametrize(
    ("path", "handler"), [("/items/{item_id:int}", second_handler), ("/items/{other:int}", renamed_handler)]
)
def test_duplicate_route_is_refused(client_factory: Any, path: str, handler: Any) -> None:
    app = App()
    app.get("/items/{item_id:int}")(first_handler)
    with pytest.raises(RouteConfigError, match=handler.__name__) as info:
        app.get(path)(handler)
    assert "first_handler" in str(info.value)
    # Another method on the same shape is fine, whatever its parameter is called.
    app.delete(path)(handler)
    client = client_factory(app)
    assert client.get("/items/4").json() == 4
    assert client.delete("/items/5").json() == 5


def test_duplicate_across_include_router_is_refused() -> None:
    app = App()

    @app.get("/x")
    async def app_x() -> str:
        return "app"

    router = Router()

    @router.get("/x")
    async def router_x() -> str:
        return "router"

    with pytest.raises(RouteConfigError, match="router_x"):
        app.include_router(router)


def test_refused_route_is_not_half_registered(client_factory: Any) -> None:
    app = App()

    @app.post("/x")
    async def create() -> str:
        return "created"

    with pytest.raises(RouteConfigError, match="get_or_post"):

        @app.api_route("/x", methods=["GET", "POST"])
        async def get_or_post() -> str:
            return "both"

    client = client_factory(app)
    assert client.get("/x").status_code == 405
    assert client.post("/x").json() == "created"
    assert [route.name for route in app.routes] == ["create"]


# --- mounts and reversing ------------------------------------------------------------------------


def test_mount_static_files(client_factory: Any, tmp_path: Any) -> None:
    (tmp_path / "hello.txt").write_text("hi there")
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "site.css").write_text("body{}")
    app = App()
    app.mount("/static", StaticFiles(directory=tmp_path), name="static")

    @app.get("/static-info")
    async def static_info() -> str:
        return "route"

    client = client_factory(app)
    assert client.get("/static/hello.txt").text == "hi there"
    assert client.get("/static/css/site.css").text == "body{}"
    missing = client.get("/static/missing.txt")
    assert missing.status_code == 404  # raised by StaticFiles, rendered by the app
    assert missing.json() == {"detail": "Not Found"}
    assert client.post("/static/hello.txt").status_code == 405
    assert client.get("/static-info").json() == "route"  # a prefix of a name is not the mount
    assert app.url_path_for("static", path="css/site.css") == "/static/css/site.css"


def test_mount_sub_app(client_factory: Any) -> None:
    sub = App()

    @sub.get("/info/{n:int}", name="info")
    async def info(request: Request, n: int) -> dict[str, Any]:
        # Names resolve from the outermost app, as in Starlette: "mount:child".
        return {
            "root_path": request.scope["root_path"],
            "n": n,
            "url": str(request.url_for("sub:info", n=n + 1)),
        }

    app = App()
    app.mount("/sub", sub, name="sub")

    @app.get("/main")
    async def main() -> str:
        return "main"

    client = client_factory(app)
    assert client.get("/sub/info/3").json() == {
        "root_path": "/sub",
        "n": 3,
        "url": "http://testserver/sub/info/4",
    }
    assert client.get("/main").json() == "main"
    missing = client.get("/sub/main")  # the parent's routes are not the sub-app's
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    assert missing.headers["content-type"] == "application/json"
    assert app.url_path_for("sub:info", n=3) == "/sub/info/3"


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("nope", {}),
        ("user_file", {"user_id": 7}),  # missing parameter
        ("user_file", {"user_id": "seven", "rest": "a"}),  # not an int
        ("user_file", {"user_id": -1, "rest": "a"}),  # the int converter is unsigned
        ("home", {"extra": 1}),
    ],
)
def test_url_path_for_no_match(name: str, params: dict[str, Any]) -> None:
    with pytest.raises(NoMatchFound):
        _reversing_app().url_path_for(name, **params)


def _reversing_app() -> App:
    app = App()

    @app.get("/", name="home")
    async def home(request: Request) -> str:
        return str(request.url_for("user_file", user_id=9, rest="x/y"))

    @app.get("/users/{user_id:int}/files/{rest:path}")
    async def user_file(user_id: int, rest: str) -> str:
        return rest

    return app


def test_url_path_for(client_factory: Any) -> None:
    app = _reversing_app()
    assert app.url_path_for("home") == "/"
    assert app.url_path_for("user_file", user_id=7, rest="a/b.txt") == "/users/7/files/a/b.txt"
    assert client_factory(app).get("/").json() == "http://testserver/users/9/files/x/y"  # request.url_for


# --- websockets ----------------------------------------------------------------------------------


def _websocket_app() -> App:
    app = App()

    @app.websocket("/ws/{room:int}")
    async def chat(websocket: WebSocket, room: int, token: str) -> None:
        await websocket.accept()
        await websocket.send_json({"room": room, "type": type(room).__name__, "token": token})
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())
        await websocket.close()

    @app.websocket("/strict/{n}")
    async def strict(websocket: WebSocket, n: int) -> None:
        await websocket.accept()
        await websocket.send_json(n)
        await websocket.close()

    return app


def test_websocket_route(client_factory: Any) -> None:
    client = client_factory(_websocket_app())
    with client.websocket_connect("/ws/12?token=abc") as ws:
        assert ws.receive_json() == {"room": 12, "type": "int", "token": "abc"}
        ws.send_text("hello")
        assert ws.receive_text() == "HELLO"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/nowhere", 1000),  # unknown path: closed
        ("/ws/not-an-int?token=a", 1000),
        ("/ws/12", 1008),  # invalid parameters: policy violation
        ("/strict/abc", 1008),
    ],
)
def test_websocket_refused(client_factory: Any, url: str, code: int) -> None:
    client = client_factory(_websocket_app())
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(url):
        pass  # pragma: no cover
    assert info.value.code == code


# --- configuration errors ------------------------------------------------------------------------


class Opaque:
    pass


async def no_param_handler() -> None: ...


async def marker_handler(item_id: Annotated[int, Path()]) -> None: ...


async def opaque_handler(thing: Opaque) -> None: ...


async def template_handler(item_id: str) -> None: ...


@pytest.mark.parametrize(
    ("path", "handler", "mentions"),
    [
        ("/items/{item_id}", no_param_handler, "item_id"),  # path parameter missing from the signature
        ("/items", marker_handler, "item_id"),  # Path() for a name not in the template
        ("/items", opaque_handler, "Opaque"),  # unsupported parameter type
    ],
)
def test_handler_config_errors(path: str, handler: Any, mentions: str) -> None:
    app = App()
    with pytest.raises(RouteConfigError, match=handler.__name__) as info:
        app.get(path)(handler)
    assert mentions in str(info.value)
    assert app.routes == []


@pytest.mark.parametrize(
    "template",
    [
        "/items/{item_id",
        "/items/{item_id}}",
        "/items/x{item_id}",
        "/items/{item id}",
        "/items/{1x}",
        "/{item_id:nope}",
    ],
)
@pytest.mark.parametrize("on_router", [False, True])
def test_bad_template_syntax(template: str, on_router: bool) -> None:
    target: App | Router = Router() if on_router else App()  # a router checks before it is included
    with pytest.raises(RouteConfigError, match="template_handler"):
        target.get(template)(template_handler)


@pytest.mark.parametrize(("template", "annotation"), [("/a/{x:int}", str), ("/a/{x:float}", int)])
def test_convertor_output_must_fit_the_annotation(template: str, annotation: Any) -> None:
    app = App()

    async def mismatched(x: Any) -> None:
        return None

    mismatched.__annotations__ = {"x": annotation}
    with pytest.raises(RouteConfigError, match=r"mismatched.*converted to"):
        app.get(template)(mismatched)


def test_int_convertor_feeds_a_float_parameter(client_factory: Any) -> None:
    app = App()

    @app.get("/a/{x:int}")
    async def widen(x: float) -> float:
        return x

    assert client_factory(app).get("/a/5").json() == 5.0


# --- a router's owner receives its routes (the App's own router works this way) -----------------


def test_a_router_hands_each_route_and_mount_to_its_owner_compiled_once() -> None:
    from starlette.applications import Starlette

    from toolkit import RouteConfigError, Router

    seen: list[tuple[str, str]] = []
    mounts: list[str] = []

    def on_route(options: Any, compiled: Any) -> None:
        if options.path == "/refused":
            raise RouteConfigError("refused by the owner")
        seen.append((options.path, compiled.template))

    router = Router(on_route=on_route, on_mount=lambda mount: mounts.append(mount.path))

    @router.get("/items/{item_id:int}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    router.mount("/static", Starlette())
    with pytest.raises(RouteConfigError, match="refused by the owner"):
        router.add_api_route("/refused", read_item)
    assert seen == [("/items/{item_id:int}", "/items/{item_id:int}")]
    assert mounts == ["/static"]
    assert [getattr(route, "path", None) for route in router.routes] == ["/items/{item_id:int}", "/static"]
