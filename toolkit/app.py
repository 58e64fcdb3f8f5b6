"""The application: routes, lifespan, middleware stack and exception handlers."""

from __future__ import annotations

import contextlib
import inspect
import logging
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack

from starlette.convertors import Convertor
from starlette.datastructures import State, URLPath
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from ._app_scope import AppScope, DependencyOverrides
from ._body import is_limited, limited_receive
from ._endpoint import Endpoint
from ._route_options import IncludeKwargs, RouteKwargs, RouteOptions, WebSocketRouteKwargs
from ._scope_keys import WEBSOCKET_UNACCEPTED_KEY
from ._trie import CompiledPath
from ._websocket import WebSocketEndpoint
from .cache import Cache
from .di import Depends
from .exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
    validation_close_reason,
)
from .exceptions import RequestValidationError
from .middleware.errors import ErrorMiddleware
from .middleware.http import HTTPFunctionMiddleware
from .openapi import REDOC_JS, SWAGGER_CSS, SWAGGER_JS, build_openapi
from .openapi._routes import DocsPages
from .responses import JSONResponse
from .routing import Dispatcher, Mount, Router, compile_route

__all__ = ["App"]

logger = logging.getLogger("toolkit")

AppT = TypeVar("AppT", bound="App")
if TYPE_CHECKING:
    from starlette.middleware import _MiddlewareFactory  # Starlette's own type for add_middleware

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
ExceptionHandler = Callable[[Request, Exception], Response | Awaitable[Response]]
Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[Mapping[str, Any] | None]]

DEFAULT_MAX_BODY_SIZE = 10 * 1024 * 1024


async def _call_hook(handler: Callable[[], Any]) -> None:
    result = handler()
    if inspect.isawaitable(result):
        await result


class App:
    """A toolkit application: an ASGI app with FastAPI-style routes on Starlette.

    ::

        app = App()

        @app.get("/items/{item_id}")
        async def read_item(item_id: int, q: str | None = None):
            return {"item_id": item_id, "q": q}
    """

    def __init__(
        self,
        *,
        debug: bool = False,
        lifespan: Lifespan | None = None,
        middleware: Sequence[Middleware] | None = None,
        exception_handlers: Mapping[int | type[Exception], ExceptionHandler] | None = None,
        dependencies: Sequence[Depends] | None = None,
        default_response_class: type[Response] = JSONResponse,
        redirect_slashes: bool = True,
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
        request_id_header: str | None = None,
        problem_details: bool = False,
        cache: Cache | None = None,
        title: str = "toolkit",
        version: str = "0.1.0",
        description: str | None = None,
        servers: list[dict[str, Any]] | None = None,
        openapi_url: str | None = "/openapi.json",
        openapi_tags: list[dict[str, Any]] | None = None,
        docs_url: str | None = "/docs",
        redoc_url: str | None = "/redoc",
        swagger_js_url: str = SWAGGER_JS,
        swagger_css_url: str = SWAGGER_CSS,
        redoc_js_url: str = REDOC_JS,
        swagger_ui_parameters: dict[str, Any] | None = None,
        swagger_ui_oauth2_redirect_url: str | None = "/docs/oauth2-redirect",
        swagger_ui_init_oauth: dict[str, Any] | None = None,
        summary: str | None = None,
        terms_of_service: str | None = None,
        contact: dict[str, Any] | None = None,
        license_info: dict[str, Any] | None = None,
        root_path: str = "",
        root_path_in_servers: bool = True,
        strict: bool = False,
        on_startup: Sequence[Callable[[], Any]] | None = None,
        on_shutdown: Sequence[Callable[[], Any]] | None = None,
    ) -> None:
        if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
            raise ValueError(f"root_path {root_path!r} must start with '/' and not end with '/'")
        self.debug = debug
        self.state = State()
        self.title = title
        self.version = version
        self.description = description
        self.summary = summary
        self.terms_of_service = terms_of_service
        self.contact = contact
        self.license_info = license_info
        # Behind a proxy that strips a prefix: links and the docs use it (FastAPI's root_path).
        self.root_path = root_path
        self.root_path_in_servers = root_path_in_servers
        # Request bodies: lax like FastAPI ("50.5" for a float) unless strict=True (per route too).
        self.strict = strict
        self.servers = servers or []
        self.max_body_size = max_body_size
        self.request_id_header = request_id_header
        self.problem_details = problem_details
        self.cache = cache
        self.lifespan_context = lifespan
        # Starlette's older start-up/shutdown hooks (``on_event``), run around ``lifespan``.
        self.on_startup: list[Callable[[], Any]] = list(on_startup or [])
        self.on_shutdown: list[Callable[[], Any]] = list(on_shutdown or [])
        self.user_middleware: list[Middleware] = list(middleware or [])
        self.exception_handlers: dict[Any, ExceptionHandler] = {
            StarletteHTTPException: http_exception_handler,
            RequestValidationError: request_validation_exception_handler,
        }
        self.exception_handlers.update(exception_handlers or {})
        self._dependency_overrides = DependencyOverrides()
        self.app_scope = AppScope()
        self.dispatcher = Dispatcher(self._render_error, self._lifespan, redirect_slashes=redirect_slashes)
        self.router = Router(
            dependencies=dependencies,
            default_response_class=default_response_class,
            on_route=self._register,
            on_mount=self.dispatcher.add_mount,
        )
        self.endpoints: list[Endpoint] = []
        self.middleware_stack: ASGIApp | None = None
        self.openapi_url = openapi_url
        self.openapi_tags = openapi_tags or []
        self.openapi_schema: dict[str, Any] | None = None
        self.docs = DocsPages(
            openapi_url,
            docs_url,
            redoc_url,
            swagger_js_url,
            swagger_css_url,
            redoc_js_url,
            swagger_ui_parameters or {},
            swagger_ui_oauth2_redirect_url,
            swagger_ui_init_oauth,
        )
        for path, handler, name in self.docs.routes(self):
            # The documentation's own routes are served, but are not the app's routes or endpoints.
            options = RouteOptions(path, handler, frozenset({"GET"}), name, include_in_schema=False)
            self._serve(options, compile_route(options, self.router.converters))

    # --- registration (delegated to the root router, served the moment it is added) ---------

    def _register(self, item: RouteOptions, compiled: CompiledPath) -> None:
        """The root router's ``on_route``: serve the route it compiled (raising refuses it)."""
        self.endpoints.append(self._serve(item, compiled))
        self.openapi_schema = None  # the document changes with the routes

    def _serve(self, item: RouteOptions, compiled: CompiledPath) -> Endpoint:
        """Build ``item``'s endpoint and put it in the dispatcher under ``compiled``."""
        path_types = {name: compiled.converters[name] for name in compiled.param_names}
        endpoint_cls = WebSocketEndpoint if item.is_websocket else Endpoint
        endpoint = endpoint_cls(
            item,
            path_types,
            render_error=self._render_error,
            max_body_size=self.max_body_size,
            app_scope=self.app_scope,
            overrides=self._dependency_overrides,
            response_cache=self.cache,
            strict=self.strict,
        )
        self.dispatcher.add(item, compiled, endpoint)
        return endpoint

    @property
    def dependency_overrides(self) -> DependencyOverrides:
        """``{dependency: replacement}``; set items, ``clear()`` it, or assign a new dict."""
        return self._dependency_overrides

    @dependency_overrides.setter
    def dependency_overrides(self, overrides: Mapping[Callable[..., Any], Callable[..., Any]]) -> None:
        # The compiled endpoints hold this one object: ``app.dependency_overrides = {}`` (as
        # FastAPI's docs reset it) replaces its contents instead of the object.
        if overrides is not self._dependency_overrides:
            replacement = dict(overrides)
            self._dependency_overrides.clear()
            self._dependency_overrides.update(replacement)

    # --- OpenAPI ----------------------------------------------------------------------------

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document, built once from the routes and cached."""
        if self.openapi_schema is None:
            self.openapi_schema = build_openapi(self)
        return self.openapi_schema

    @property
    def routes(self) -> list[RouteOptions | Mount]:
        return self.router.routes

    def add_api_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Sequence[str] | None = None,
        **options: Unpack[RouteKwargs],
    ) -> None:
        self.router.add_api_route(path, endpoint, methods=methods, **options)

    add_route = add_api_route

    def api_route(
        self, path: str, *, methods: Sequence[str] | None = None, **options: Unpack[RouteKwargs]
    ) -> Callable[[F], F]:
        return self.router.api_route(path, methods=methods, **options)

    def get(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.router.get(path, **options)

    def post(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.router.post(path, **options)

    def put(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.router.put(path, **options)

    def patch(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.router.patch(path, **options)

    def delete(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.router.delete(path, **options)

    def head(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.router.head(path, **options)

    def options(self, path: str, **options: Unpack[RouteKwargs]) -> Callable[[F], F]:
        return self.router.options(path, **options)

    def websocket(self, path: str, **options: Unpack[WebSocketRouteKwargs]) -> Callable[[F], F]:
        return self.router.websocket(path, **options)

    def add_websocket_route(
        self, path: str, endpoint: Callable[..., Any], **options: Unpack[WebSocketRouteKwargs]
    ) -> None:
        self.router.add_websocket_route(path, endpoint, **options)

    def include_router(self, router: Router, **options: Unpack[IncludeKwargs]) -> None:
        self.router.include_router(router, **options)

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        self.router.mount(path, app, name)

    def register_converter(self, name: str, convertor: Convertor[Any]) -> None:
        self.router.register_converter(name, convertor)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        return self.dispatcher.url_path_for(name, **path_params)

    # --- middleware and errors -------------------------------------------------------------

    def add_middleware(
        self, middleware_class: _MiddlewareFactory[P], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Add a pure-ASGI middleware; the last one added is the outermost (as in Starlette)."""
        if self.middleware_stack is not None:
            raise RuntimeError("Cannot add middleware after the application has started")
        self.user_middleware.insert(0, Middleware(middleware_class, *args, **kwargs))

    def middleware(self, middleware_type: str) -> Callable[[F], F]:
        """FastAPI's ``@app.middleware("http")``: ``async def mw(request, call_next)`` around every
        HTTP request, pure ASGI underneath (streaming kept; ``HTTPFunctionMiddleware``). A class
        middleware (``add_middleware``) is cheaper: each function middleware runs the rest of
        the app in a task of its own."""
        if middleware_type != "http":
            raise ValueError(f'only "http" function middleware exists, not {middleware_type!r}')

        def decorator(func: F) -> F:
            # A body the function reads is held to the app's limit, as the routes' bodies are.
            self.add_middleware(HTTPFunctionMiddleware, dispatch=func, max_body_size=self.max_body_size)
            return func

        return decorator

    def add_event_handler(self, event_type: str, func: Callable[[], Any]) -> None:
        """Run ``func`` (sync or async) at ``"startup"`` or ``"shutdown"``; prefer ``lifespan=``."""
        if event_type == "startup":
            self.on_startup.append(func)
        elif event_type == "shutdown":
            self.on_shutdown.append(func)
        else:
            raise ValueError(f"event_type must be 'startup' or 'shutdown', not {event_type!r}")

    def on_event(self, event_type: str) -> Callable[[F], F]:
        """Deprecated (as in FastAPI and Starlette): use ``lifespan=``. Still run, around it."""
        warnings.warn(
            "on_event is deprecated: pass App(lifespan=...), an async context manager that runs "
            "start-up code before its yield and shutdown code after it",
            DeprecationWarning,
            stacklevel=2,
        )

        def decorator(func: F) -> F:
            self.add_event_handler(event_type, func)
            return func

        return decorator

    def add_exception_handler(self, key: int | type[Exception], handler: ExceptionHandler) -> None:
        self.exception_handlers[key] = handler

    def exception_handler(self, key: int | type[Exception]) -> Callable[[F], F]:
        def decorator(func: F) -> F:
            self.add_exception_handler(key, func)
            return func

        return decorator

    def build_middleware_stack(self) -> ASGIApp:
        error_handler = self.exception_handlers.get(500) or self.exception_handlers.get(Exception)
        app: ASGIApp = self.dispatcher  # it passes the lifespan to ``_lifespan``
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return ErrorMiddleware(
            app,
            handler=error_handler,
            debug=self.debug,
            request_id_header=self.request_id_header,
            problem_json=self.problem_details,
            handler_body_limit=self.max_body_size,
        )

    def _lookup_handler(self, exc: Exception) -> ExceptionHandler | None:
        handlers = self.exception_handlers
        if isinstance(exc, StarletteHTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in handlers and cls is not Exception:
                return handlers[cls]
        return None

    async def _render_error(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception
    ) -> Response | None:
        """Turn ``exc`` into a response with the matching handler; re-raise it when none matches."""
        if scope["type"] == "websocket":
            await self._close_websocket(scope, receive, send, exc)
            return None
        handler = self._lookup_handler(exc)
        if handler is None:
            raise exc
        if self.max_body_size is not None and not is_limited(receive):
            # A 404/405 handler reading the body is held to the app's limit (an endpoint's
            # handlers already count against the route's).
            receive = limited_receive(receive, self.max_body_size, scope)
        result = handler(Request(scope, receive, send), exc)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _close_websocket(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        from starlette.exceptions import WebSocketException

        if isinstance(exc, WebSocketException):
            code, reason = exc.code, exc.reason or ""
        elif isinstance(exc, RequestValidationError):
            code, reason = 1008, validation_close_reason(exc)
        elif isinstance(exc, StarletteHTTPException):
            if scope.get(WEBSOCKET_UNACCEPTED_KEY) and "websocket.http.response" in scope.get(
                "extensions", {}
            ):
                # Before accept(), as Starlette (and FastAPI) do where the server can: the
                # handshake is refused with the HTTP error itself (its status, detail, headers).
                handler = self._lookup_handler(exc) or http_exception_handler
                denied = WebSocket(scope, receive, send)
                result = handler(denied, exc)  # type: ignore[arg-type]  # an HTTPConnection, as in FastAPI
                response = await result if inspect.isawaitable(result) else result
                await denied.send_denial_response(response)
                return
            code, reason = 1008, str(exc.detail)[:120]
        else:
            raise exc
        websocket = WebSocket(scope, receive, send)
        with contextlib.suppress(RuntimeError):  # already closed by the handler
            await websocket.close(code=code, reason=reason)

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        if self.root_path:
            scope["root_path"] = self.root_path
        if "router" not in scope:
            # request.url_for resolves names from the outermost app (as Starlette's Router does),
            # so a mounted App reverses "mount:name" with the right prefix.
            scope["router"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        await self.middleware_stack(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _run_lifespan(self) -> AsyncIterator[Mapping[str, Any] | None]:
        # App-scoped dependencies exist for the whole lifespan, the user's included: they are
        # created before it starts and torn down after it ends.
        # The plans of the current overrides decide what is created: an overridden app-scoped
        # dependency (a test's fake pool) instead of the real one, not as well, and the real one
        # again once the overrides are cleared.
        await self.app_scope.startup(
            [dependant for endpoint in self.endpoints for dependant in endpoint.current_plan().app_scoped],
            skip=self.dependency_overrides.keys(),
        )
        try:
            for handler in self.on_startup:
                await _call_hook(handler)
            try:
                if self.lifespan_context is None:
                    yield None
                else:
                    async with self.lifespan_context(self) as state:
                        yield state
            finally:
                for handler in self.on_shutdown:
                    await _call_hook(handler)
        finally:
            await self.app_scope.shutdown()
            await self._close_stores()

    async def _close_stores(self) -> None:
        """Close the connections of the stores the app knows (its cache's, its middleware's
        ``store=``): the server's event loop ends with the lifespan. A ``RedisStore`` used
        elsewhere (a rate limiter) closes its connections when its event loop ends."""
        stores = [self.cache.store] if self.cache is not None else []
        stores += [
            kwargs["store"] for _, _, kwargs in self.user_middleware if kwargs.get("store") is not None
        ]
        for store in {id(store): store for store in stores}.values():
            aclose = getattr(store, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    logger.exception("closing %r at shutdown failed", store)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        await receive()  # lifespan.startup
        try:
            async with self._run_lifespan() as state:
                if state is not None:
                    if "state" not in scope:
                        raise RuntimeError('The server does not support "state" in the lifespan scope.')
                    scope["state"].update(state)
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except BaseException:
            message = traceback.format_exc()
            logger.error("lifespan %s failed:\n%s", "shutdown" if started else "startup", message)
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": message})
            raise
        await send({"type": "lifespan.shutdown.complete"})
