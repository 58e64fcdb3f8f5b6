"""``serve()``: run an app under uvicorn with the toolkit's production (or development) defaults.

The defaults, and why (the README's "Deploy" section says the same for users):

- httptools and uvloop (``uvicorn[standard]``): httptools answers a request with both
  ``Content-Length`` and ``Transfer-Encoding`` 400 and closes (h11 keeps the connection open);
- ``GuardedHttpToolsProtocol``: a 32 KiB request head, the head within 10 s, a body at 256 B/s or
  more, a client that reads nothing for 60 s cut off (see ``_protocol``), which uvicorn lacks;
- ``limit_concurrency`` 1000 connections or requests per worker (then 503), ``backlog`` 2048;
- ``timeout_keep_alive`` 5 s (raise it above a load balancer's idle timeout when behind one);
- ``timeout_graceful_shutdown`` 25 s: on SIGTERM the server stops accepting, lets in-flight requests
  finish for up to that long, then runs the lifespan shutdown (Kubernetes gives 30 s by default);
- proxy headers (``X-Forwarded-For``/``-Proto``) only from ``forwarded_allow_ips``; none by default;
- no ``Server`` header; one worker unless asked (``--workers N``, ``auto``, or ``$WEB_CONCURRENCY``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Literal

from ._discover import Target, _is_app, load_target
from ._limits import LIMITS_ENV, Limits

__all__ = ["ServeOptions", "available_cpus", "serve"]

logger = logging.getLogger("toolkit.serve")

Mode = Literal["run", "dev"]

_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # "<quota> <period>" or "max <period>" (cgroup v2)

# What the worker processes read to load the app (set by ``serve`` before uvicorn starts them).
APP_ENV, PATH_ENV, FACTORY_ENV, MODE_ENV = (
    "TOOLKIT_SERVE_APP",
    "TOOLKIT_SERVE_PATH",
    "TOOLKIT_SERVE_FACTORY",
    "TOOLKIT_SERVE_MODE",
)


@dataclasses.dataclass
class ServeOptions:
    """How to serve; the defaults are ``toolkit run``'s (``ServeOptions.for_mode("dev")`` for dev)."""

    host: str = "0.0.0.0"
    port: int = 8000
    workers: int = 1
    forwarded_allow_ips: str | None = None
    root_path: str = ""
    log_level: str = "info"
    access_log: bool = True
    timeout_keep_alive: int = 5
    timeout_graceful_shutdown: int = 25
    limit_concurrency: int | None = 1000
    backlog: int = 2048
    limits: Limits = dataclasses.field(default_factory=Limits)
    reload: bool = False
    reload_dirs: list[str] = dataclasses.field(default_factory=list)
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None

    @classmethod
    def for_mode(cls, mode: Mode, **changes: Any) -> ServeOptions:
        if mode == "dev":
            changes = {"host": "127.0.0.1", "reload": True, **changes}
        return cls(**changes)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.reload and self.workers > 1:
            raise ValueError("reload serves one worker: drop --workers or --reload")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, got {self.port}")
        if self.limit_concurrency is not None and self.limit_concurrency < 1:
            raise ValueError(f"limit_concurrency must be at least 1, got {self.limit_concurrency}")
        for name in ("timeout_keep_alive", "timeout_graceful_shutdown", "backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def describe(self, target: str, mode: Mode) -> str:
        limits = self.limits
        workers = f"{self.workers} worker{'s' if self.workers > 1 else ''}"
        proxy = f"from {self.forwarded_allow_ips}" if self.forwarded_allow_ips else "off"
        scheme = "https" if self.ssl_certfile else "http"
        return (
            f"toolkit {mode}: {target} on {scheme}://{self.host}:{self.port} ({workers}"
            f"{', reload' if self.reload else ''}); head <= {limits.header_size} bytes within "
            f"{limits.header_timeout:g} s, body >= {limits.min_body_rate} B/s per {limits.body_timeout:g} s, "
            f"send timeout {limits.send_timeout:g} s, "
            f"{self.limit_concurrency or 'unlimited'} concurrent per worker, "
            f"drain {self.timeout_graceful_shutdown} s, "
            f"proxy headers {proxy}"
        )


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota
    (a container limited to 2 CPUs on a 64-core node gets 2)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        count = os.cpu_count() or 1
    try:
        quota, period = _CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def serve(target: Target, options: ServeOptions, mode: Mode = "run") -> None:
    """Import the app once here (so a mistake is reported before any worker starts), then run uvicorn.

    Every worker (and the reloader's child) imports it again through ``_loader.load``."""
    import uvicorn

    app, target = load_target(target)  # raises DiscoveryError with a message for the user
    _warn_about(app, options, mode)
    os.environ.update(
        {
            APP_ENV: target.import_string,
            PATH_ENV: target.path,
            FACTORY_ENV: "1" if target.factory else "",
            MODE_ENV: mode,
            LIMITS_ENV: options.limits.to_env(),
        }
    )
    from ._protocol import GuardedHttpToolsProtocol  # after LIMITS_ENV is set: it checks it

    logger.info(options.describe(target.import_string, mode))
    proxy = options.forwarded_allow_ips
    uvicorn.run(
        "toolkit.serve._loader:load",
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        loop="auto",  # uvloop where installed (uvicorn[standard] installs it on Linux and macOS)
        http=GuardedHttpToolsProtocol,
        lifespan="on" if _is_app(app) else "auto",  # a toolkit or Starlette app speaks lifespan
        log_level=options.log_level,
        access_log=options.access_log,
        proxy_headers=proxy is not None,
        forwarded_allow_ips=proxy,
        server_header=False,
        root_path=options.root_path,
        limit_concurrency=options.limit_concurrency,
        backlog=options.backlog,
        timeout_keep_alive=options.timeout_keep_alive,
        timeout_graceful_shutdown=options.timeout_graceful_shutdown,
        reload=options.reload,
        reload_dirs=(options.reload_dirs or [target.path]) if options.reload else None,
        ssl_keyfile=options.ssl_keyfile,
        ssl_certfile=options.ssl_certfile,
    )


def _warn_about(app: Any, options: ServeOptions, mode: Mode) -> None:
    if mode == "run" and getattr(app, "debug", False) is True:
        logger.warning(
            "debug is on under `toolkit run`: error responses carry tracebacks; never in production"
        )
    if options.workers > 1:
        from ..sessions import MemoryStore

        metrics = sys.modules.get("toolkit.metrics")  # only if the app uses it
        if metrics is not None and any(not m.multiprocess for m in metrics.Metrics.instances()):
            logger.warning(
                "the app has Metrics but PROMETHEUS_MULTIPROC_DIR is not set: with %d workers each scrape "
                "sees one worker's counts; set it to an empty directory before starting",
                options.workers,
            )
        if MemoryStore.instances():
            logger.warning(
                "the app keeps state in a MemoryStore, which is per process: with %d workers each has "
                "its own sessions (a user is logged out when another worker answers), cache entries "
                "and rate-limit counters; use RedisStore(url=...) from toolkit.sessions "
                "(pip install 'toolkit[redis]')",
                options.workers,
            )
