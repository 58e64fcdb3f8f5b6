"""Prometheus metrics: pure-ASGI middleware and a ``/metrics`` endpoint (``pip install 'toolkit[metrics]'``).

::

    metrics = Metrics()
    app = App(middleware=[metrics.middleware()])
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)

Every label takes a bounded set of values, whatever clients send or handlers answer, so a client
cannot grow the number of series (memory here and in Prometheus, bytes in every scrape):

- ``method``: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT or TRACE; anything else is
  ``OTHER`` (uvicorn's h11 parser passes any token through as a method, ``MXYZ`` included);
- ``route``: the route *template* (``/items/{item_id:int}``), never the raw path; unmatched
  requests (404, 405, a mounted app) are ``<unmatched>``;
- ``status``: the code when it is a registered one (``http.HTTPStatus``: 200, 404, 418...),
  else its class (``4xx`` for 499) or ``other`` outside 100-599 (a handler can set any integer).

The in-flight gauge is labelled by method only: the route is not known until routing has run.

Several uvicorn workers: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the workers
start (prometheus-client's multiprocess mode); ``endpoint`` then aggregates every worker's files.
``Metrics()`` refuses a variable that is empty or names no writable directory (prometheus-client
would write into the working directory, or fail on every request), and drops the in-flight gauge
files of workers no longer alive (a crashed worker's requests would otherwise stay "in flight").
"""

from __future__ import annotations

import os
import time
import weakref
from http import HTTPStatus
from typing import Any

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._scope_keys import ROUTE_SCOPE_KEY

__all__ = ["Metrics", "MetricsMiddleware"]

UNMATCHED = "<unmatched>"
OTHER_METHOD = "OTHER"
OTHER_STATUS = "other"
_METHODS = {
    method: method
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")
}
_STATUSES = {int(status): str(int(status)) for status in HTTPStatus}


def method_label(method: str) -> str:
    """The method, or ``OTHER`` for one outside the standard set (methods are case-sensitive)."""
    return _METHODS.get(method, OTHER_METHOD)


def status_label(status: int) -> str:
    """The registered code as is, else its class (``"4xx"``), else ``"other"``."""
    label = _STATUSES.get(status)
    if label is not None:
        return label
    if isinstance(status, int) and 100 <= status <= 599:
        return f"{status // 100}xx"
    return OTHER_STATUS


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("metrics need prometheus-client: pip install 'toolkit[metrics]'") from exc
    return prometheus_client


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _multiprocess_directory() -> str | None:
    """The multiprocess directory, checked; ``None`` when the variable is not set."""
    if MULTIPROC_ENV not in os.environ:
        return None
    directory = os.environ[MULTIPROC_ENV]
    if not directory:
        raise ValueError(f"{MULTIPROC_ENV} is set but empty: unset it, or name an empty directory")
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"{MULTIPROC_ENV}={directory!r} is not a writable directory: create it first")
    return directory


def _forget_dead_workers(directory: str) -> None:
    """Remove the live-gauge files of processes that are gone (counters and histograms stay)."""
    multiprocess: Any = __import__("prometheus_client.multiprocess", fromlist=["mark_process_dead"])
    pids: set[int] = set()
    for name in os.listdir(directory):
        stem, _, number = name.removesuffix(".db").rpartition("_")
        if stem.startswith("gauge_live") and number.isdigit():
            pids.add(int(number))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)
        except PermissionError:  # alive, someone else's
            pass


class Metrics:
    """The metric families of one app and the endpoint that exposes them."""

    _live: weakref.WeakSet[Metrics] = weakref.WeakSet()

    def __init__(
        self, *, registry: Any = None, namespace: str = "http", buckets: tuple[float, ...] | None = None
    ):
        directory = _multiprocess_directory()
        prometheus = _prometheus()
        self.multiprocess = directory is not None
        if directory is not None:
            _forget_dead_workers(directory)
        Metrics._live.add(self)
        # A registry of our own by default, so two apps in one process (tests) do not collide;
        # in multiprocess mode values go to the shared files whatever the registry.
        self.registry = registry if registry is not None else prometheus.CollectorRegistry(auto_describe=True)
        labels = ("method", "route", "status")
        self.requests = prometheus.Counter(
            f"{namespace}_requests_total", "Requests answered.", labels, registry=self.registry
        )
        histogram_kwargs: dict[str, Any] = {"registry": self.registry}
        if buckets is not None:
            histogram_kwargs["buckets"] = buckets
        self.duration = prometheus.Histogram(
            f"{namespace}_request_duration_seconds",
            "Time from the request to the last byte of the response.",
            labels,
            **histogram_kwargs,
        )
        self.in_flight = prometheus.Gauge(
            f"{namespace}_requests_in_flight",
            "Requests being handled.",
            ("method",),
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    @classmethod
    def instances(cls) -> list[Metrics]:
        """The ``Metrics`` alive in this process (``toolkit run --workers N`` checks their mode)."""
        return list(cls._live)

    def middleware(self) -> Middleware:
        return Middleware(MetricsMiddleware, metrics=self)

    async def endpoint(self, request: Request) -> Response:
        """The Prometheus text exposition of every metric (all workers in multiprocess mode)."""
        prometheus = _prometheus()
        registry = self.registry
        if self.multiprocess:
            multiprocess: Any = __import__(
                "prometheus_client.multiprocess", fromlist=["MultiProcessCollector"]
            )
            registry = prometheus.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return Response(prometheus.generate_latest(registry), media_type=prometheus.CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Count, time and gauge every HTTP request (pure ASGI; other scopes pass through)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = method_label(scope["method"])
        metrics = self.metrics
        start = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering
        in_flight = metrics.in_flight.labels(method)
        in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            in_flight.dec()
            route = scope.get(ROUTE_SCOPE_KEY, UNMATCHED)
            labels = (method, route, status_label(status))
            metrics.requests.labels(*labels).inc()
            metrics.duration.labels(*labels).observe(time.perf_counter() - start)
