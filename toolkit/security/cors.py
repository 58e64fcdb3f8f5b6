"""CORS configuration that refuses the settings that let any site read users' data.

``cors_middleware(...)`` returns Starlette's ``CORSMiddleware`` wrapped in a ``Middleware`` for
``App(middleware=[...])``, after checking the options:

- with ``allow_credentials=True``, a wildcard origin (``"*"``), the ``"null"`` origin (sent by
  sandboxed iframes and ``file:`` pages, so anyone can produce it) and an ``allow_origin_regex``
  that matches arbitrary origins (``".*"``, ``"https://.*"``) are refused: with credentials,
  Starlette would echo the caller's origin and every site could read responses made with the
  user's cookies;
- an origin must look like ``scheme://host[:port]``; ``"https://example.com/"`` (a trailing
  slash or a path) never matches the ``Origin`` header, so it is a ``ValueError`` too.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

__all__ = ["cors_middleware"]

_ORIGIN = re.compile(r"[a-z][a-z0-9+.\-]*://[^/?#\s]+", re.IGNORECASE)
# Origins no allow-list with credentials should ever accept; a regex matching any is too broad.
_PROBE_ORIGINS = (
    "https://attacker.invalid",
    "http://attacker.invalid",
    "https://attacker.invalid:8443",
    "null",
)


def _check_options(
    allow_origins: Collection[str], allow_origin_regex: str | None, allow_credentials: bool
) -> None:
    if isinstance(allow_origins, str):
        raise TypeError(f"allow_origins must be a list of origins, like [{allow_origins!r}], not a string")
    for origin in allow_origins:
        if origin not in ("*", "null") and not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"CORS origin {origin!r} is not an origin (scheme://host[:port], no path or trailing slash)"
            )
    compiled = None
    if allow_origin_regex is not None:
        try:
            compiled = re.compile(allow_origin_regex)
        except re.error as exc:
            raise ValueError(
                f"allow_origin_regex {allow_origin_regex!r} is not a valid regex: {exc}"
            ) from exc
    if not allow_credentials:
        return
    if "*" in allow_origins:
        raise ValueError(
            'allow_origins=["*"] with allow_credentials=True would let every site make credentialed '
            "requests and read the responses; list the trusted origins instead"
        )
    if "null" in allow_origins:
        raise ValueError(
            'allow_origins with "null" and allow_credentials=True: any page can send Origin: null'
        )
    if compiled is not None and any(compiled.fullmatch(probe) for probe in _PROBE_ORIGINS):
        raise ValueError(
            f"allow_origin_regex {allow_origin_regex!r} matches arbitrary origins, which with "
            "allow_credentials=True lets every site read credentialed responses; anchor it to your domains"
        )


def cors_middleware(
    *,
    allow_origins: Collection[str] = (),
    allow_methods: Collection[str] = ("GET",),
    allow_headers: Collection[str] = (),
    allow_credentials: bool = False,
    allow_origin_regex: str | None = None,
    allow_private_network: bool = False,
    expose_headers: Collection[str] = (),
    max_age: int = 600,
) -> Middleware:
    """Starlette's ``CORSMiddleware`` with the same options, checked first (see the module docstring)."""
    _check_options(allow_origins, allow_origin_regex, allow_credentials)
    return Middleware(
        CORSMiddleware,
        allow_origins=list(allow_origins),
        allow_methods=list(allow_methods),
        allow_headers=list(allow_headers),
        allow_credentials=allow_credentials,
        allow_origin_regex=allow_origin_regex,
        allow_private_network=allow_private_network,
        expose_headers=list(expose_headers),
        max_age=max_age,
    )
