"""The ``toolkit`` command: ``toolkit run APP`` (production defaults) and ``toolkit dev APP`` (reload, debug).

Options read the environment where platforms set it: ``$TOOLKIT_APP`` (the app), ``$PORT``,
``$WEB_CONCURRENCY`` (workers), ``$FORWARDED_ALLOW_IPS`` (the proxies whose ``X-Forwarded-*``
headers are trusted). A bad value is a usage error (exit 2) that names the option.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ._discover import DiscoveryError, find_target
from ._limits import Limits
from ._server import Mode, ServeOptions, available_cpus, serve

__all__ = ["main"]

_DEFAULTS = ServeOptions()
_LIMITS = Limits()


def _workers(text: str) -> int:
    if text == "auto":
        return available_cpus()
    try:
        workers = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (or 'auto')") from None
    if workers < 1:
        raise argparse.ArgumentTypeError(f"workers must be at least 1, got {workers}")
    return workers


def _positive(kind: type[int] | type[float]) -> argparse._ActionType:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'}"
            ) from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {port}")
    return port


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _addresses(text: str) -> str:
    """``--forwarded-allow-ips``: ``*`` or comma-separated addresses and networks, each checked."""
    for item in (part.strip() for part in text.split(",")):
        if item and item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{item!r} is not an IP address or network") from None
    return text


# The environment variables options default to: a bad value is named as such, not as the option.
_ENVIRONMENT = {
    "PORT": "--port",
    "WEB_CONCURRENCY": "--workers",
    "FORWARDED_ALLOW_IPS": "--forwarded-allow-ips",
}


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake said in two lines instead of the whole usage."""

    given: list[str] = []  # the command line (an option not on it came from the environment)

    def error(self, message: str) -> NoReturn:
        for variable, option in _ENVIRONMENT.items():
            if (
                message.startswith(f"argument {option}")
                and option not in self.given
                and os.environ.get(variable)
            ):
                message = f"${variable}{message.removeprefix(f'argument {option}')}"
        self.exit(2, f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = _Parser(
        prog="toolkit",
        description="Serve a toolkit (or any ASGI) app with uvicorn.",
        epilog="`toolkit run --help` lists the production defaults.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,dev}")
    run = commands.add_parser(
        "run",
        help="serve in production: httptools + uvloop, request limits and timeouts, graceful shutdown",
        description="Serve APP with production defaults. Every default is chosen for a public server "
        "and can be changed here.",
    )
    dev = commands.add_parser(
        "dev",
        help="serve for development: reload on change, debug on, 127.0.0.1",
        description="Serve APP for development: reloads when a file changes, debug on (tracebacks in "
        "500 responses), listens on 127.0.0.1 only.",
    )
    for command, mode in ((run, "run"), (dev, "dev")):
        _add_options(command, mode)  # type: ignore[arg-type]
    return parser, {"run": run, "dev": dev}


def _add_options(parser: argparse.ArgumentParser, mode: Mode) -> None:
    parser.add_argument(
        "app",
        nargs="?",
        metavar="APP",
        help="module:attr, a module, or path/to/file.py[:attr] (default: $TOOLKIT_APP, then main.py, "
        "app.py, api.py, app/main.py)",
    )
    parser.add_argument("--factory", action="store_true", help="APP is a function that returns the app")
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host",
        default="127.0.0.1" if mode == "dev" else _DEFAULTS.host,
        help="address to listen on (default: %(default)s)",
    )
    server.add_argument(
        "--port", type=_port, default=_env("PORT", "8000"), help="(default: $PORT or %(default)s)"
    )
    if mode == "run":
        server.add_argument(
            "--workers",
            type=_workers,
            default=_env("WEB_CONCURRENCY", "1"),  # a string default goes through type=
            help="worker processes, or 'auto' for one per available CPU (default: $WEB_CONCURRENCY or 1; "
            "in Kubernetes prefer 1 per pod and more replicas)",
        )
    else:
        server.add_argument(
            "--reload-dir",
            action="append",
            dest="reload_dirs",
            default=[],
            metavar="DIR",
            help="watch DIR for changes (repeatable; default: the app's top directory)",
        )
        server.add_argument("--no-reload", dest="reload", action="store_false", help="do not reload")
    server.add_argument(
        "--forwarded-allow-ips",
        type=_addresses,
        default=os.environ.get("FORWARDED_ALLOW_IPS") or None,
        metavar="IPS",
        help="comma-separated addresses or networks of the proxies whose X-Forwarded-For/-Proto are "
        "trusted; '*' trusts any sender (default: $FORWARDED_ALLOW_IPS, else none: proxy headers off)",
    )
    server.add_argument("--root-path", default="", help="the path prefix a proxy mounts the app under")
    server.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="(default: %(default)s)",
    )
    server.add_argument("--no-access-log", dest="access_log", action="store_false", help="no access log")
    server.add_argument("--ssl-keyfile", help="serve HTTPS with this key (usually a proxy terminates TLS)")
    server.add_argument("--ssl-certfile", help="... and this certificate")
    limits = parser.add_argument_group("limits and timeouts")
    for flag, kind, default, metavar, text in _LIMIT_OPTIONS:
        limits.add_argument(
            flag, type=kind, default=default, metavar=metavar, help=f"{text} (default: %(default)s)"
        )


# flag, type, default, metavar, help: the server's limits and timeouts (``toolkit run --help``)
_LIMIT_OPTIONS: list[tuple[str, Any, Any, str, str]] = [
    (
        "--limit-header-size",
        _positive(int),
        _LIMITS.header_size,
        "BYTES",
        "the request line and headers, at most (then 431)",
    ),
    (
        "--timeout-header",
        _positive(float),
        _LIMITS.header_timeout,
        "SECONDS",
        "the request line and headers must arrive within this (then 408)",
    ),
    (
        "--timeout-body",
        _positive(float),
        _LIMITS.body_timeout,
        "SECONDS",
        "while a body is read, each such period must bring --min-body-rate",
    ),
    ("--min-body-rate", int, _LIMITS.min_body_rate, "BYTES_PER_S", "slowest accepted upload (then 408)"),
    (
        "--timeout-send",
        _positive(float),
        _LIMITS.send_timeout,
        "SECONDS",
        "abort a connection whose client reads nothing of a response for this long",
    ),
    (
        "--limit-concurrency",
        _positive(int),
        _DEFAULTS.limit_concurrency,
        "N",
        "connections or requests in progress per worker beyond which new requests get 503",
    ),
    ("--backlog", _positive(int), _DEFAULTS.backlog, "N", "listen queue"),
    (
        "--timeout-keep-alive",
        _positive(int),
        _DEFAULTS.timeout_keep_alive,
        "SECONDS",
        "close an idle connection after this; behind a load balancer, set it above the balancer's "
        "idle timeout",
    ),
    (
        "--timeout-graceful-shutdown",
        _positive(int),
        _DEFAULTS.timeout_graceful_shutdown,
        "SECONDS",
        "on SIGTERM, how long in-flight requests may finish before they are cancelled and the lifespan "
        "shuts down",
    ),
]


class _UvicornStyle(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname + ':':<9} {record.getMessage()}"


def _log_like_uvicorn() -> None:
    """The command's own messages, formatted as uvicorn's (which configures only its own loggers)."""
    logger = logging.getLogger("toolkit.serve")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(_UvicornStyle())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    _Parser.given = list(sys.argv[1:] if argv is None else argv)
    parser, commands = _parser()
    args = parser.parse_args(argv)
    mode: Mode = args.command
    try:
        limits = Limits(
            header_size=args.limit_header_size,
            header_timeout=args.timeout_header,
            body_timeout=args.timeout_body,
            min_body_rate=args.min_body_rate,
            send_timeout=args.timeout_send,
        )
        options = ServeOptions.for_mode(
            mode,
            host=args.host,
            port=args.port,
            workers=getattr(args, "workers", 1),
            forwarded_allow_ips=args.forwarded_allow_ips,
            root_path=args.root_path,
            log_level=args.log_level,
            access_log=args.access_log,
            timeout_keep_alive=args.timeout_keep_alive,
            timeout_graceful_shutdown=args.timeout_graceful_shutdown,
            limit_concurrency=args.limit_concurrency,
            backlog=args.backlog,
            limits=limits,
            reload=getattr(args, "reload", False),
            reload_dirs=getattr(args, "reload_dirs", []),
            ssl_keyfile=args.ssl_keyfile,
            ssl_certfile=args.ssl_certfile,
        )
        target = find_target(args.app, factory=args.factory)
    except (ValueError, DiscoveryError) as exc:
        commands[mode].error(str(exc))
    _log_like_uvicorn()
    try:
        serve(target, options, mode)
    except DiscoveryError as exc:
        print(f"toolkit {mode}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
