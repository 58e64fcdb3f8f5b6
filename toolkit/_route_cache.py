"""What a cached route's responses are shared on, decided once at registration.

A cached response may only be served to a request that would have produced the same response.
The key therefore covers, besides the route and its validated parameters:

- the origin: ``Host``, scheme and ``root_path`` (links built with ``url_for`` differ per host);
- the headers named in ``CachePolicy(vary=...)``;
- the credentials any step of the route reads: the header, query value or cookie a built-in
  security scheme reads, and the session cookie of a ``Session`` parameter.

A step that reads the ``Request`` itself could read anything (and hand it to the handler through
a shared dependency, a context variable, ``request.state``); such a route is refused at
registration unless its policy says how to share (``vary=[...]``, or ``shared=True`` for "the
same for every caller"). A route reading a body is refused: the body is not in the key.
Responses of routes that read credentials are sent ``Cache-Control: private``.

At run time the entry also records the request values of every header the response says it
varies on (a ``Vary`` set by the handler, and ``Cookie`` when the session was read by code the
key does not cover); a hit needs the same values.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.types import Scope

from ._body import header_lines, request_cookies
from ._injectables import injectable_named
from ._plan import Plan
from .cache import CachePolicy
from .exceptions import RouteConfigError
from .security._schemes import SecurityScheme

__all__ = ["KeySpec", "key_spec", "request_key", "resource_key"]

_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_CREDENTIAL_REQUEST_HEADERS = frozenset(name.encode("latin-1") for name in _CREDENTIAL_HEADERS)


@dataclasses.dataclass(frozen=True, slots=True)
class KeySpec:
    """The request values a route's cache key covers besides its validated parameters."""

    headers: tuple[bytes, ...] = ()  # policy.vary and credential headers, lower-case
    cookies: tuple[str, ...] = ()  # cookies read by an APIKeyCookie
    query: tuple[str, ...] = ()  # query values read by an APIKeyQuery
    session: bool = False  # the session (its cookie) is in the key
    reads_session: bool = False  # some step takes a Session parameter
    private: bool = False  # send Cache-Control: private
    # What every response of the route says in ``Vary``: ``policy.vary``, then the declared
    # header parameters (a shared cache in front of the app must key on them too, or it would
    # serve one ``X-API-Key``'s answer to all).
    route_vary: tuple[str, ...] = ()
    # Credential headers the key does not cover: a request carrying one is served uncached.
    unkeyed_credentials: frozenset[bytes] = frozenset()


def _trusted_source(call: Any) -> tuple[str, str] | None:
    """Where a built-in security scheme reads its credential; ``None`` for anything else,
    including a subclass that reads it its own way (overriding ``__call__`` or ``_read``)."""
    if not isinstance(call, SecurityScheme) or call.credential_source is None:
        return None
    cls = type(call)
    for method in ("__call__", "_read"):
        defined = getattr(cls, method, None)
        if defined is not None and getattr(defined, "__module__", None) != SecurityScheme.__module__:
            return None
    return call.credential_source


def _neutral(call: Any) -> bool:
    """The toolkit's own rate limit (looked up on the class, so a proxy cannot claim it)."""
    cls = type(call)
    return cls.__module__ == "toolkit.ratelimit" and cls.__dict__.get("cache_neutral", False) is True


def key_spec(plan: Plan, policy: CachePolicy, owner: str) -> KeySpec:
    """What the cache key of ``plan``'s route covers; refuses a route that cannot be keyed safely.

    Every step counts, not only those whose value the handler receives: a gate in
    ``dependencies=[...]`` can hand what it read to the handler through a shared dependency, a
    context variable or ``request.state``. With ``shared=True`` the route declares its response
    the same for every caller: credentials are not keyed (the gates still run on every hit).
    """
    if plan.has_body or plan.has_forms:
        raise RouteConfigError(f"{owner}: a cached route cannot read a request body (it is not in the key)")
    headers: list[bytes] = [name.encode("latin-1") for name in policy.vary]
    cookies: list[str] = []
    query: list[str] = []
    session = reads_session = False
    private = bool(_CREDENTIAL_HEADERS.intersection(policy.vary))
    for spec in plan.scalar_specs():
        if spec.source == "cookie" or (spec.source == "header" and spec.key.lower() in _CREDENTIAL_HEADERS):
            private = True  # already in the key: a declared parameter
    for step in plan.steps:
        kinds = {kind for _, kind in step.special_args}
        if "session" in kinds:
            reads_session = private = True
            session = not policy.shared
        source = _trusted_source(step.call)
        if source is not None:
            private = True
            if not policy.shared:
                where, name = source
                if where == "header":
                    headers.append(name.lower().encode("latin-1"))
                elif where == "cookie":
                    cookies.append(name)
                else:
                    query.append(name)
            continue
        if _neutral(step.call):
            continue  # the toolkit's own rate limit: refuses or adds headers, nothing else
        if any(injectable_named(kind).reads_request for kind in kinds):
            _refuse_request_reader(step.name, policy, owner)
    declared_headers = [s.key for s in plan.scalar_specs() if s.source == "header"]
    said = {name.lower() for name in policy.vary}
    # A policy saying ``vary=`` or ``shared=True`` has declared what the response depends on.
    declared_sharing = policy.shared or bool(policy.vary)
    unkeyed = frozenset() if declared_sharing else _unkeyed_credentials(plan, headers, cookies, session)
    return KeySpec(
        tuple(dict.fromkeys(headers)),
        tuple(dict.fromkeys(cookies)),
        tuple(dict.fromkeys(query)),
        session,
        reads_session,
        private,
        (*policy.vary, *dict.fromkeys(name for name in declared_headers if name not in said)),
        unkeyed,
    )


def _unkeyed_credentials(
    plan: Plan, headers: list[bytes], cookies: list[str], session: bool
) -> frozenset[bytes]:
    """The credential headers no part of the key covers. Identity can reach a handler without
    any parameter (a middleware setting a context variable), so a request carrying one is
    served uncached, as a shared cache does by default (RFC 9111 3.5; Varnish's built-in rule
    for ``Authorization`` and ``Cookie``)."""
    declared = {(s.source, s.key.lower()) for s in plan.scalar_specs()}
    covered = set(headers)
    covered |= {name.encode("latin-1") for source, name in declared if source == "header"}
    if session or cookies or any(source == "cookie" for source, _ in declared):
        covered.add(b"cookie")  # the route says which cookies it reads; those are in the key
    return _CREDENTIAL_REQUEST_HEADERS - covered


def _refuse_request_reader(step: str, policy: CachePolicy, owner: str) -> None:
    """A step reading the ``Request`` itself is refused unless the policy says how to share."""
    if policy.shared or policy.vary:
        return
    raise RouteConfigError(
        f"{owner}: a cached route cannot know what {step} reads from the Request, so "
        "one caller's response could be served to another. Say what the response depends "
        f"on (from toolkit.cache import CachePolicy): cache=CachePolicy({policy.expire}, "
        'vary=["Authorization"]) keys entries on those headers; '
        f"CachePolicy({policy.expire}, shared=True) declares it the same for every caller; or "
        "take the values as typed parameters (Header(), Cookie(), a security scheme)"
    )


_json = msgspec.json.encode
# msgpack frames every value with its length, so no choice of values makes two requests alike.
_pack = msgspec.msgpack.Encoder().encode


def resource_key(path_values: Sequence[Any]) -> bytes:
    """The digest of a route's path parameters: what ``Cache.invalidate`` drops every entry of."""
    if not path_values:
        return _NO_PATH_VALUES  # PERF: a route without path parameters is one resource
    return hashlib.blake2b(_json(path_values), digest_size=16).digest()


_NO_PATH_VALUES = hashlib.blake2b(_json([]), digest_size=16).digest()


def request_key(
    spec: KeySpec, params: Any, path_values: Sequence[Any], scope: Scope, learned: Sequence[str] = ()
) -> tuple[bytes, bytes]:
    """``(resource digest, entry digest)``: the resource is the path parameters (see
    ``resource_key``); the entry covers all the validated parameters and everything else a
    response is shared on (origin, ``vary`` headers, credentials, and the ``learned`` headers
    earlier responses of the route said they vary on)."""
    # JSON, not msgpack, for the parameters: msgpack keeps an aware datetime as a bare instant.
    parts: list[Any] = [
        _json(params),
        scope.get("scheme", "http"),
        scope.get("root_path", ""),
        header_lines(scope, b"host"),
    ]
    for name in spec.headers:
        parts.append(header_lines(scope, name))
    for learned_name in learned:
        parts.append(header_lines(scope, learned_name.encode("latin-1")))
    if spec.cookies:
        jar = request_cookies(scope)  # every Cookie line, as ``Request.cookies`` (``APIKeyCookie``)
        parts += [jar.get(cookie, "") for cookie in spec.cookies]
    if spec.query:
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        parts += [[value for key, value in pairs if key == name] for name in spec.query]
    if spec.session:
        parts.append(getattr(scope.get("session"), "cookie", None) or "")
    return resource_key(path_values), hashlib.blake2b(_pack(parts), digest_size=16).digest()
