"""Routers: declare routes with decorators, nest them, and dispatch requests through a trie.

``Router`` is declarative (FastAPI's ``APIRouter``): it records routes with its prefix, tags and
dependencies applied. ``Dispatcher`` is what runs: compiled endpoints in a ``PathTrie`` (static
paths by one dict lookup, dynamic ones by segment), then mounted apps by prefix.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, Unpack

from starlette.convertors import Convertor
from starlette.datastructures import URL, URLPath
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import NoMatchFound
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._endpoint import Endpoint
from ._responder import INFER
from ._route_options import RouteKwargs, RouteOptions
from ._scope_keys import ROUTE_SCOPE_KEY, TIMING_SCOPE_KEY
from ._trie import DEFAULT_CONVERTERS, CompiledPath, PathTrie, compile_path
from .cache import CachePolicy
from .di import Depends
from .exceptions import HTTPException, RouteConfigError
from .responses import JSONResponse

__all__ = ["ROUTE_SCOPE_KEY", "Mount", "NoMatchFound", "Router"]

F = TypeVar("F", bound=Callable[..., Any])
WEBSOCKET = "WEBSOCKET"  # pseudo-method under which websocket endpoints are stored


@dataclasses.dataclass(slots=True)
class Mount:
    """An ASGI app served under a path prefix (``StaticFiles``, another ``App``...)."""

    path: str
    app: ASGIApp
    name: str | None = None


class Router:
    """A group of routes sharing a prefix, tags and dependencies; include it in an App.

    ::

        router = Router(prefix="/users", tags=["users"], dependencies=[Depends(auth)])

        @router.get("/{user_id:int}")
        async def read_user(user_id: int) -> User: ...

        app.include_router(router)

    Whoever serves a router's routes (the App, for its own router) passes ``on_route`` and
    ``on_mount``: each route is then handed over the moment it is added, with the template the
    router compiled (so it is compiled once), and each mount likewise. A callback that raises
    refuses the route or mount: it is not listed in ``routes`` either.
    """

    def __init__(
        self,
        prefix: str = "",
        *,
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
        default_response_class: type[Response] = JSONResponse,
        responses: Mapping[int | str, Any] | None = None,
        deprecated: bool | None = None,
        include_in_schema: bool = True,
        converters: Mapping[str, Convertor[Any]] | None = None,
        on_route: Callable[[RouteOptions, CompiledPath], None] | None = None,
        on_mount: Callable[[Mount], None] | None = None,
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise RouteConfigError(f"router prefix {prefix!r} must start with '/' and not end with '/'")
        self.prefix = prefix
        self.tags = list(tags or [])
        self.dependencies = list(dependencies or [])
        self.default_response_class = default_response_class
        self.responses = dict(responses or {})
        self.deprecated = deprecated
        self.include_in_schema = include_in_schema
        self.converters: dict[str, Convertor[Any]] = {**DEFAULT_CONVERTERS, **(converters or {})}
        self.routes: list[RouteOptions | Mount] = []
        self._route_converters: dict[int, Mapping[str, Convertor[Any]]] = {}
        self._on_route = on_route
        self._on_mount = on_mount

    def register_converter(self, name: str, convertor: Convertor[Any]) -> None:
        """Make ``{param:name}`` available in this router's paths (no global registry)."""
        if not name.isidentifier():
            raise RouteConfigError(f"converter name {name!r} must be an identifier")
        self.converters[name] = convertor

    # --- registration --------------------------------------------------------------------

    def _add(self, item: RouteOptions, converters: Mapping[str, Convertor[Any]] | None = None) -> None:
        merged = self.converters if converters is None else {**self.converters, **converters}
        # Fail at registration: compile the template now, even on a router not yet included.
        compiled = compile_route(item, merged)
        if self._on_route is not None:
            self._on_route(item, compiled)  # may refuse the route: then it is not listed either
        self.routes.append(item)
        self._route_converters[id(item)] = merged

    def add_api_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Sequence[str] | None = None,
        name: str | None = None,
        status_code: int | None = None,
        response_model: Any = INFER,
        response_class: type[Response] | None = None,
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
        summary: str | None = None,
        description: str | None = None,
        deprecated: bool | None = None,
        include_in_schema: bool = True,
        operation_id: str | None = None,
        responses: Mapping[int | str, Any] | None = None,
        response_description: str = "Successful Response",
        max_body_size: int | None = None,
        cache: CachePolicy | int | None = None,
        response_model_include: set[str] | None = None,
        response_model_exclude: set[str] | None = None,
        response_model_by_alias: bool = True,
        response_model_exclude_unset: bool = False,
        response_model_exclude_defaults: bool = False,
        response_model_exclude_none: bool = False,
        openapi_extra: dict[str, Any] | None = None,
        strict: bool | None = None,
    ) -> None:
        if not path.startswith("/") and not (path == "" and self.prefix):
            raise RouteConfigError(f"route path {path!r} must start with '/'")
        upper = frozenset(m.upper() for m in (methods or ["GET"]))
        self._add(
            RouteOptions(
                path=self.prefix + path,
                endpoint=endpoint,
                methods=upper,
                name=name or _default_name(endpoint),
                status_code=status_code,
                response_model=response_model,
                response_class=response_class or self.default_response_class,
                tags=[*self.tags, *(tags or [])],
                dependencies=[*self.dependencies, *(dependencies or [])],
                summary=summary,
                description=description,
                deprecated=deprecated if deprecated is not None else self.deprecated,
                include_in_schema=include_in_schema and self.include_in_schema,
                operation_id=operation_id,
                responses={**self.responses, **(responses or {})},
                response_description=response_description,
                max_body_size=max_body_size,
                cache=cache,
                response_model_include=response_model_include,
                response_model_exclude=response_model_exclude,
                response_model_by_alias=response_model_by_alias,
                response_model_exclude_unset=response_model_exclude_unset,
                response_model_exclude_defaults=response_model_exclude_defaults,
                response_model_exclude_none=response_model_exclude_none,
                openapi_extra=openapi_extra,
                strict=strict,
            )
        )

    def api_route(
        self, path: str, *, methods: Sequence[str] | None = None, **options: Unpack[RouteKwargs]
    ) -> Callable[[F], F]:
        def decorator(func: F) -> F:
            self.add_api_route(path, func, methods=methods, **options)
            return func

        return decorator

    def get(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.api_route(path, methods=["GET"], **options)

    def post(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.api_route(path, methods=["POST"], **options)

    def put(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.api_route(path, methods=["PUT"], **options)

    def patch(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.api_route(path, methods=["PATCH"], **options)

    def delete(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.api_route(path, methods=["DELETE"], **options)

    def head(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.api_route(path, methods=["HEAD"], **options)

    def options(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.api_route(path, methods=["OPTIONS"], **options)

    def add_websocket_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        name: str | None = None,
        dependencies: Sequence[Depends] | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise RouteConfigError(f"websocket path {path!r} must start with '/'")
        self._add(
            RouteOptions(
                path=self.prefix + path,
                endpoint=endpoint,
                methods=frozenset({WEBSOCKET}),
                name=name or _default_name(endpoint),
                dependencies=[*self.dependencies, *(dependencies or [])],
                include_in_schema=False,
                is_websocket=True,
            )
        )

    def websocket(
        self, path: str, *, name: str | None = None, dependencies: Sequence[Depends] | None = None
    ) -> Callable[[F], F]:
        def decorator(func: F) -> F:
            self.add_websocket_route(path, func, name=name, dependencies=dependencies)
            return func

        return decorator

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        """Serve another ASGI app under ``path``; it sees ``root_path`` extended by the prefix."""
        path = (self.prefix + path).rstrip("/")
        if path and not path.startswith("/"):
            raise RouteConfigError(f"mount path {path!r} must start with '/'")
        mount = Mount(path, app, name)
        if self._on_mount is not None:
            self._on_mount(mount)  # may refuse the mount: then it is not listed either
        self.routes.append(mount)

    def include_router(
        self,
        router: Router,
        *,
        prefix: str = "",
        tags: Sequence[str] | None = None,
        dependencies: Sequence[Depends] | None = None,
        responses: Mapping[int | str, Any] | None = None,
        deprecated: bool | None = None,
        include_in_schema: bool = True,
    ) -> None:
        """Copy ``router``'s routes here under ``prefix``, adding tags and dependencies."""
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise RouteConfigError(f"include prefix {prefix!r} must start with '/' and not end with '/'")
        if router is self:
            raise RouteConfigError("a router cannot include itself")
        for item in router.routes:
            if isinstance(item, Mount):
                self.mount(prefix + item.path, item.app, item.name)
                continue
            copied = dataclasses.replace(
                item,
                path=self.prefix + prefix + item.path,
                tags=[*self.tags, *(tags or []), *item.tags],
                dependencies=[*self.dependencies, *(dependencies or []), *item.dependencies],
                responses={**self.responses, **(responses or {}), **item.responses},
                deprecated=item.deprecated if deprecated is None else deprecated or item.deprecated,
                include_in_schema=item.include_in_schema and include_in_schema and self.include_in_schema,
            )
            self._add(copied, router._route_converters.get(id(item), router.converters))


def compile_route(item: RouteOptions, converters: Mapping[str, Convertor[Any]]) -> CompiledPath:
    """Compile ``item``'s path template; a malformed one is a RouteConfigError naming the route."""
    try:
        return compile_path(item.path, converters)
    except ValueError as exc:
        raise RouteConfigError(f"{item.name}: {exc}") from exc


def _default_name(endpoint: Callable[..., Any]) -> str:
    return str(getattr(endpoint, "__name__", type(endpoint).__name__))


class PathEntry:
    """What the trie stores for one path shape: the endpoint of each method."""

    __slots__ = ("auto_head", "compiled", "methods")

    def __init__(self, compiled: CompiledPath) -> None:
        self.compiled = compiled
        self.methods: dict[str, Any] = {}
        self.auto_head = False


class _Renamed:
    """An endpoint whose path parameter names differ from the first template of its shape."""

    __slots__ = ("endpoint", "mapping")

    def __init__(self, endpoint: Endpoint, mapping: dict[str, str]) -> None:
        self.endpoint = endpoint
        self.mapping = mapping

    async def __call__(self, scope: Scope, receive: Receive, send: Send, params: dict[str, Any]) -> None:
        await self.endpoint(scope, receive, send, {self.mapping[k]: v for k, v in params.items()})


def route_path(scope: Scope) -> str:
    """The path to route on: ``scope["path"]`` without the ``root_path`` a mount or proxy added."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        if path == root_path:
            return "/"
        if path[len(root_path)] == "/":
            return path[len(root_path) :]
    return path


class Dispatcher:
    """Match a request to an endpoint (or a mount) and call it; 404/405/307 otherwise."""

    def __init__(
        self, render_error: Callable[..., Any], lifespan: ASGIApp, redirect_slashes: bool = True
    ) -> None:
        self.trie: PathTrie[PathEntry] = PathTrie()
        self.mounts: list[Mount] = []
        self.names: dict[str, CompiledPath] = {}
        self.render_error = render_error
        self.lifespan = lifespan  # the app's: the dispatcher is the innermost layer of its stack
        self.redirect_slashes = redirect_slashes

    def add(self, options: RouteOptions, compiled: CompiledPath, endpoint: Endpoint) -> None:
        entry = self.trie.get(compiled)
        if entry is None:
            entry = PathEntry(compiled)
            self.trie.insert(compiled, entry)
        handler: Any = endpoint
        if entry.compiled.param_names != compiled.param_names:
            handler = _Renamed(
                endpoint, dict(zip(entry.compiled.param_names, compiled.param_names, strict=True))
            )
        for method in options.methods:
            existing = entry.methods.get(method)
            if existing is not None and not (method == "HEAD" and entry.auto_head):
                name = getattr(existing, "name", None) or existing.endpoint.name
                raise RouteConfigError(
                    f"{endpoint.name}: {method} {options.path} is already registered by {name}"
                )
        for method in options.methods:  # only once every method is known to be free
            entry.methods[method] = handler
            if method == "HEAD":
                entry.auto_head = False
        if "GET" in options.methods and "HEAD" not in entry.methods:
            entry.methods["HEAD"] = handler
            entry.auto_head = True
        self.names.setdefault(options.name, compiled)

    def add_mount(self, mount: Mount) -> None:
        self.mounts.append(mount)
        # Longest prefix first, so /static/img wins over /static.
        self.mounts.sort(key=lambda m: len(m.path), reverse=True)

    def url_path_for(self, name: str, /, **params: Any) -> URLPath:
        compiled = self.names.get(name)
        if compiled is not None and set(compiled.param_names) == set(params):
            try:
                return URLPath(compiled.format(params))
            except ValueError as exc:
                raise NoMatchFound(name, params) from exc
        for mount in self.mounts:
            if mount.name is None:
                continue
            if name == mount.name and set(params) == {"path"}:
                return URLPath(mount.path + "/" + str(params["path"]).lstrip("/"))
            if name.startswith(mount.name + ":"):
                child = getattr(mount.app, "url_path_for", None)
                if child is not None:
                    path = child(name[len(mount.name) + 1 :], **params)
                    return URLPath(mount.path + str(path))
        raise NoMatchFound(name, params)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        timing = scope.get(TIMING_SCOPE_KEY)
        if timing is not None:
            started = time.perf_counter()
        # PERF: route_path inlined for the common case (no root_path).
        path = scope["path"] if not scope.get("root_path") else route_path(scope)
        match = self.trie.match(path)
        if timing is not None:
            timing["route"] = time.perf_counter() - started
        if match is not None:
            entry, params = match
            endpoint = entry.methods.get(scope["method"] if kind == "http" else WEBSOCKET)
            if endpoint is not None:
                scope[ROUTE_SCOPE_KEY] = entry.compiled.template  # metrics/rate limits label by it
                await endpoint(scope, receive, send, params)
                return
            # Slow path: a less specific template may serve this method (backtracking by method).
            for entry, params in self.trie.iter_matches(path):
                endpoint = entry.methods.get(scope["method"] if kind == "http" else WEBSOCKET)
                if endpoint is not None:
                    scope[ROUTE_SCOPE_KEY] = entry.compiled.template
                    await endpoint(scope, receive, send, params)
                    return
        for mount in self.mounts:
            prefix = mount.path
            if path == prefix or path.startswith(prefix + "/") or not prefix:
                child = dict(scope)
                root_path = scope.get("root_path", "")
                child["root_path"] = root_path + prefix
                child.setdefault("app_root_path", root_path)
                await self._call_mount(mount.app, child, receive, send)
                return
        await self._not_matched(scope, receive, send, path, match is not None)

    async def _call_mount(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a mounted app; an HTTPException it raises (StaticFiles' 404) is rendered like ours."""
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        except StarletteHTTPException as exc:
            if started:
                raise
            await self._render(scope, receive, send, exc)

    async def _not_matched(
        self, scope: Scope, receive: Receive, send: Send, path: str, path_known: bool
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
            return
        if path_known:
            allowed = sorted(
                {m for entry, _ in self.trie.iter_matches(path) for m in entry.methods if m != WEBSOCKET}
            )
            if allowed:
                exc = HTTPException(405, "Method Not Allowed", headers={"Allow": ", ".join(allowed)})
                await self._render(scope, receive, send, exc)
                return
        if self.redirect_slashes and path != "/" and "//" not in path and "\\" not in path:
            other = path[:-1] if path.endswith("/") else path + "/"
            if self.trie.match(other) is not None:
                redirect_scope = dict(scope)
                # The scope's path is decoded: a literal "%" must stay one in the Location, or
                # "/files/%2541/" would redirect to "/files/%41", that is to "/files/A".
                redirect_scope["path"] = (scope.get("root_path", "") + other).replace("%", "%25")
                response = RedirectResponse(str(URL(scope=redirect_scope)), status_code=307)
                await response(scope, receive, send)
                return
        await self._render(scope, receive, send, HTTPException(404, "Not Found"))

    async def _render(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        response = await self.render_error(scope, receive, send, exc)
        if response is not None:
            await response(scope, receive, send)
