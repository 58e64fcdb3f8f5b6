r"""CORS configuration that refuses the settings that let any site read users' data.

``cors_middleware(...)`` returns Starlette's ``CORSMiddleware`` wrapped in a ``Middleware`` for
``App(middleware=[...])``, after checking the options:

- with ``allow_credentials=True``, a wildcard origin (``"*"``), the ``"null"`` origin (sent by
  sandboxed iframes and ``file:`` pages, so anyone can produce it) and an ``allow_origin_regex``
  that matches arbitrary origins (``".*"``, ``"https://.*"``) are refused: with credentials,
  Starlette would echo the caller's origin and every site could read responses made with the
  user's cookies;
- with ``allow_credentials=True``, an ``allow_origin_regex`` whose host is not anchored at a dot
  boundary and at the end is refused too: ``https://.*example\.com`` matches
  ``https://evilexample.com``, ``https://example\.com.*`` matches ``https://example.com.evil.io``
  and ``https://app.example.com`` (unescaped dots) matches ``https://app-example.com``, all
  domains anyone can register. ``https://([a-z0-9-]+\.)*example\.com`` and
  ``https://[a-z]+\.example\.com`` pass. See ``_check_regex_hosts`` for how it is decided;
- an origin must look like ``scheme://host[:port]``; ``"https://example.com/"`` (a trailing
  slash or a path) never matches the ``Origin`` header, so it is a ``ValueError`` too.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Collection, Iterator
from typing import Any

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
    if compiled is not None:
        problem = _check_regex_hosts(compiled)
        if problem is not None:
            raise ValueError(
                f"allow_origin_regex {allow_origin_regex!r} {problem}; with allow_credentials=True "
                r"that site could read credentialed responses. Anchor the host: "
                r"'https://([a-z0-9-]+\.)*example\.com' (escaped dots, a dot before the domain, "
                "nothing after it but an optional port)"
            )


# --- allow_origin_regex: is every host it accepts anchored to a fixed domain? -----------------------
#
# Probing with fixed "attacker" origins cannot see the mistakes that matter (``.*example\.com``
# matches no fixed probe but does match ``evilexample.com``), and reading the pattern as text
# misses spellings such as ``example[.]com`` or ``(?:example)\.(com|org)``. So the regex is
# parsed (``re._parser``, the parser ``re.compile`` itself uses) into example origins it matches
# (every alternative and optional part taken at least once), each character marked *fixed* (a
# literal, a one-character class, a lone unescaped ``.``) or *variable* (a class, a repeat,
# ``\w``...). For every example, the host's fixed tail is its apparent domain (``example.com``
# in ``a.example.com``); the regex is refused when
# - the host ends in a variable part (``example\.[a-z]+``), a variable part touches the domain
#   without a dot (``[a-z]+example\.com``), or sits right on a one-label domain or a common
#   two-label public suffix (``[a-z]+\.com``, ``[a-z]+\.co\.uk``): anyone could register one;
# - it matches a probe built from that domain, in http and https: ``evil``/``evil-``/``0`` right
#   before it, ``.evil.io``/``evil.io``/``-evil.io``/``:1@evil.io`` right after it, or one of
#   its dots turned into ``-`` (an unescaped dot).
# Those probes differ from an accepted origin only where a domain boundary is crossed, so an
# anchored pattern never matches them. A pattern the analysis cannot follow (back-references,
# conditionals) or that yields no example origin is refused as well: with credentials, an
# allow-list we cannot check is not accepted on trust. A wildcard right under a well-known
# shared-hosting domain (``github.io``, ``vercel.app``... ``_SHARED_HOSTING``) is refused too.
# Not covered: the full Public Suffix List, so a wildcard right above a rarer suffix
# (``[a-z]+\.ne\.jp``, a smaller hosting provider) passes.

_Char = tuple[str, bool]  # a character of an example origin, and whether the pattern fixes it
_MAX_EXAMPLES = 64  # combinations kept in full up to this many
_MAX_TOTAL = 4096  # examples at most; a pattern needing more is "cannot be checked"
_MAX_REPEAT = 256
_MAX_ORIGIN_LENGTH = 300  # scheme, a 253-character host and a port
# Domains where anyone can get a name of their own (the private section of the Public Suffix
# List, its best-known entries): a wildcard right under one admits every other customer's site.
_SHARED_HOSTING = frozenset(
    {
        "github.io",
        "gitlab.io",
        "vercel.app",
        "now.sh",
        "netlify.app",
        "netlify.com",
        "herokuapp.com",
        "pages.dev",
        "workers.dev",
        "web.app",
        "firebaseapp.com",
        "appspot.com",
        "azurewebsites.net",
        "cloudapp.net",
        "azurestaticapps.net",
        "cloudfront.net",
        "s3.amazonaws.com",
        "amazonaws.com",
        "elasticbeanstalk.com",
        "onrender.com",
        "fly.dev",
        "railway.app",
        "glitch.me",
        "repl.co",
        "replit.dev",
        "ngrok.io",
        "ngrok-free.app",
        "blogspot.com",
        "wordpress.com",
        "myshopify.com",
        "surge.sh",
        "deno.dev",
        "pythonanywhere.com",
        "readthedocs.io",
        "gitbook.io",
        "codeberg.page",
        "bitbucket.io",
        "translate.goog",
    }
)
_CANDIDATES = "abcdefghijklmnopqrstuvwxyz0123456789-._~"
_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "net", "org"})  # co.uk, com.au...
_EXAMPLE_ORIGIN = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*)://([^:/\[\]@]+)(:[0-9]*)?")


class _Unsupported(Exception):
    """A regex construct the example generator does not follow."""


def _check_regex_hosts(compiled: re.Pattern[str]) -> str | None:
    """Why the regex accepts hosts outside the domains it names, or ``None`` if it does not."""
    try:
        parser: Any = importlib.import_module("re._parser")
        examples = _sequence(parser.parse(compiled.pattern, compiled.flags), in_repeat=False)
    except (_Unsupported, ImportError, AttributeError, TypeError, ValueError, re.error, RecursionError):
        return "cannot be checked (use plain alternatives of scheme://host, or allow_origins)"
    checked = 0
    for chars in examples:
        text = "".join(char for char, _ in chars)
        found = _EXAMPLE_ORIGIN.fullmatch(text)
        if found is None or not compiled.fullmatch(text):
            continue
        checked += 1
        start, end = found.span(2)
        problem = _host_problem(compiled, found.group(1), chars[start:end], found.group(3) or "")
        if problem is not None:
            return problem
    return None if checked else "cannot be checked (no example origin derived from it matches it)"


def _host_problem(compiled: re.Pattern[str], scheme: str, host: tuple[_Char, ...], port: str) -> str | None:
    fixed = len(host)
    while fixed and host[fixed - 1][1]:
        fixed -= 1
    tail = "".join(char for char, _ in host[fixed:])
    domain = tail.lstrip(".-")
    labels = [label for label in domain.split(".") if label]
    variable = any(not is_fixed for _, is_fixed in host)
    if not domain:
        return "accepts any host ending (the host must end with a fixed domain)"
    if fixed and not tail.startswith("."):
        return f"joins a variable part to {domain!r} without a dot (any prefix would do)"
    if variable and (len(labels) < 2 or (len(labels) == 2 and labels[0].lower() in _SECOND_LEVEL)):
        return f"accepts any domain under {domain!r}"
    if variable and domain.lower() in _SHARED_HOSTING:
        return f"accepts any site hosted under {domain!r} (anyone can get a name there)"
    for probe in _probes(domain):
        for probe_scheme in dict.fromkeys((scheme, "https", "http")):
            origin = f"{probe_scheme}://{probe}" if "@" in probe else f"{probe_scheme}://{probe}{port}"
            if compiled.fullmatch(origin):
                return f"matches {origin!r}, a host outside {domain!r}"
    return None


def _probes(domain: str) -> Iterator[str]:
    for prefix in ("evil", "evil-", "0"):
        yield prefix + domain
    for suffix in (".evil.io", "evil.io", "-evil.io", ":1@evil.io"):
        yield domain + suffix
    for index, char in enumerate(domain):
        if char == ".":
            yield f"{domain[:index]}-{domain[index + 1 :]}"


def _concat(left: list[tuple[_Char, ...]], right: list[tuple[_Char, ...]]) -> list[tuple[_Char, ...]]:
    """Every combination while they are few; past that, pairs that still use every option once."""
    if max(map(len, left), default=0) + max(map(len, right), default=0) > _MAX_ORIGIN_LENGTH:
        raise _Unsupported("longer than any origin")  # nested repeats would otherwise explode
    if len(left) * len(right) <= _MAX_EXAMPLES:
        return [a + b for a in left for b in right]
    size = max(len(left), len(right))
    if size > _MAX_TOTAL:
        raise _Unsupported("too many alternatives")
    return [left[i % len(left)] + right[i % len(right)] for i in range(size)]


def _sequence(nodes: Any, *, in_repeat: bool) -> list[tuple[_Char, ...]]:
    """Example strings of a parsed (sub)pattern: every alternative, repeats at min and min + 1."""
    results: list[tuple[_Char, ...]] = [()]
    for op, value in nodes:
        results = _concat(results, _node(str(op), value, in_repeat=in_repeat))
    return results


def _node(op: str, value: Any, *, in_repeat: bool) -> list[tuple[_Char, ...]]:
    if op == "LITERAL":
        return [((chr(value), True),)]
    if op == "NOT_LITERAL":
        return [(("b" if chr(value) == "a" else "a", False),)]
    if op == "ANY":  # alone, an unescaped dot meant as a dot (probed as "-"); repeated, a wildcard
        return [(("a", False),)] if in_repeat else [((".", True),)]
    if op == "IN":
        return [(_pick(value),)]
    if op == "CATEGORY":
        return [(_pick([("CATEGORY", value)]),)]
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, body = value
        if low > _MAX_REPEAT:  # longer than any host name
            raise _Unsupported("repeat count")
        examples = _sequence(body, in_repeat=True)
        out: list[tuple[_Char, ...]] = []
        for count in sorted({low, min(low + 1, high)}):
            repeated: list[tuple[_Char, ...]] = [()]
            for _ in range(count):
                repeated = _concat(repeated, examples)
            out += repeated
        return out
    if op == "SUBPATTERN":
        return _sequence(value[-1], in_repeat=in_repeat)
    if op == "ATOMIC_GROUP":
        return _sequence(value, in_repeat=in_repeat)
    if op == "BRANCH":
        out = [ex for branch in value[1] for ex in _sequence(branch, in_repeat=in_repeat)]
        if len(out) > _MAX_TOTAL:
            raise _Unsupported("too many alternatives")
        return out
    if op in ("AT", "ASSERT", "ASSERT_NOT"):
        return [()]
    raise _Unsupported(op)


def _pick(items: Any) -> _Char:
    """A character of a class (a letter if it has one); fixed when it is the only one."""
    entries = [(str(op), value) for op, value in items]
    negate = any(op == "NEGATE" for op, _ in entries)
    if not negate and len(entries) == 1 and entries[0][0] == "LITERAL":
        return chr(entries[0][1]), True
    for char in _CANDIDATES:
        if _in_class(char, entries) != negate:
            return char, False
    raise _Unsupported("character class")


def _in_class(char: str, entries: list[tuple[str, Any]]) -> bool:
    code = ord(char)
    for op, value in entries:
        if op == "LITERAL" and code == value:
            return True
        if op == "RANGE" and value[0] <= code <= value[1]:
            return True
        if op == "CATEGORY":
            name = str(value)
            word = char.isalnum() or char == "_"
            tests = {"DIGIT": char.isdigit(), "WORD": word, "SPACE": char.isspace()}
            kind = name.rsplit("_", 1)[-1]
            if kind in tests and tests[kind] != ("_NOT_" in name):
                return True
    return False


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
        # Browsers send scheme and host lower-case; Starlette compares exactly.
        allow_origins=[origin.lower() for origin in allow_origins],
        allow_methods=list(allow_methods),
        allow_headers=list(allow_headers),
        allow_credentials=allow_credentials,
        allow_origin_regex=allow_origin_regex,
        allow_private_network=allow_private_network,
        expose_headers=list(expose_headers),
        max_age=max_age,
    )
