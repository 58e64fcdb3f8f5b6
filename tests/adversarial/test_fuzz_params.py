"""Fuzzing (issue 9, part 3): hypothesis properties, end to end through the ASGI app in-process
(raw scopes: exactly the bytes a server hands over, no client normalizing them).

- Query strings: any bytes, any unicode, percent-encoding, repeated keys. Never a 500; when valid
  the handler sees exactly what a reference parser says (``urllib.parse.parse_qsl`` plus the
  conversions written out below); when not, one 422 names exactly the failing parameters.
- Paths: random paths and methods against an app with many overlapping routes. Never a 500; the
  route, its converted parameters, 404, 405 (+ ``Allow``) and the 307 slash redirect are what a
  reference regex matcher says. (tests/test_trie.py checks the trie alone the same way.)
"""

from __future__ import annotations

import inspect
import math
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

import pytest
from adv_support import call, scope_for
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.convertors import CONVERTOR_TYPES

from toolkit import App

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as portal:
        yield portal


def make_handler(name: str, params: dict[str, Any], seen: list[dict[str, Any]] | None = None) -> Any:
    """A handler with exactly these keyword parameters (name -> (annotation, default or ...))."""

    async def handler(**kwargs: Any) -> dict[str, Any]:
        if seen is not None:
            seen.append(kwargs)
        return {
            "route": name,
            "params": {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in kwargs.items()},
        }

    parameters = [
        inspect.Parameter(
            key,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=tp,
            default=inspect.Parameter.empty if d is ... else d,
        )
        for key, (tp, d) in params.items()
    ]
    handler.__signature__ = inspect.Signature(parameters, return_annotation=dict[str, Any])  # type: ignore[attr-defined]
    handler.__annotations__ = {**{k: tp for k, (tp, _) in params.items()}, "return": dict[str, Any]}
    return handler


# --- query strings ---------------------------------------------------------------------------------

QUERY_PARAMS: dict[str, Any] = {
    "i": (int, ...),
    "f": (float, 0.0),
    "s": (str, ""),
    "b": (bool, False),
    "li": (list[int], []),
    "oi": (int | None, None),
}
INVALID = object()
# msgspec's lax conversion reads a string as a JSON number; an integral value within 2**53 (exact
# as a float) fits an int.
JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# The toolkit's lax integers ("01", "+1", " 1 "), as pydantic's lax mode reads them: ASCII digits
# with optional spaces/tabs around, converted with int().
LAX_INT = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*", re.ASCII)
BOOL_WORDS = {"true": True, "1": True, "yes": True, "y": True, "on": True, "t": True}
BOOL_WORDS |= {"false": False, "0": False, "no": False, "n": False, "off": False, "f": False}


def lax_int(text: str) -> Any:
    if not LAX_INT.fullmatch(text):
        return INVALID
    try:
        return int(text)
    except ValueError:  # "\x1c1": \s matches U+001C, int() does not strip it
        return INVALID


def ref_int(text: str) -> Any:
    number = JSON_NUMBER.fullmatch(text)
    if number and not number.group(2) and not number.group(3):
        return int(text)
    if number:
        value = float(text)
        if math.isfinite(value) and value.is_integer() and abs(value) <= 2**53:
            return int(value)
    return lax_int(text)


def ref_float(text: str) -> Any:
    if JSON_NUMBER.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else INVALID
    if text.lower() in ("nan", "-nan", "inf", "-inf", "infinity", "-infinity"):
        return float(text)
    number = lax_int(text)
    return INVALID if number is INVALID else float(number)


def ref_bool(text: str) -> Any:
    if text.lower() in BOOL_WORDS:
        return BOOL_WORDS[text.lower()]
    number = lax_int(text)
    return {0: False, 1: True}.get(number, INVALID) if number is not INVALID else INVALID


def reference(query: bytes) -> tuple[dict[str, Any], set[str]]:
    """What the handler must see, and which parameters must fail."""
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        values.setdefault(key, []).append(value)
    last = {key: texts[-1] for key, texts in values.items()}
    expected: dict[str, Any] = {"f": 0.0, "s": "", "b": False, "li": [], "oi": None}
    converters = {"i": ref_int, "f": ref_float, "s": str, "b": ref_bool}
    converters["oi"] = lambda t: None if t.lower() == "null" else ref_int(t)
    failing = set() if "i" in last else {"i"}
    for key, convert in converters.items():
        if key in last:
            expected[key] = convert(last[key])
            if expected[key] is INVALID:
                failing.add(key)
    if "li" in values:
        expected["li"] = [ref_int(t) for t in values["li"]]
        if INVALID in expected["li"]:
            failing.add("li")
    return expected, failing


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


KEYS = st.sampled_from([*QUERY_PARAMS, "x", "I", "i ", "l%69"]) | st.text(max_size=3)
NUMBERS = st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,8})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)
LAX = st.from_regex(r"\s{0,2}[+-]?[0-9]{1,8}\s{0,2}", fullmatch=True)
WORDS = st.sampled_from(
    [
        *["true", "FALSE", "yes", "Off", "t", "f", "N", "nan", "-Infinity", "inf", "null", "NULL", "None"],
        *["", "1_0", "0x1f", "٣", "\U0001d7d9", "\x1c1", " 1", "+1", "01", "00", "-0", "1e3", "1e400", "1.5"],
        "9" * 30,
    ]
)
VALUES = st.one_of(
    NUMBERS,
    LAX,
    WORDS,
    WORDS,
    WORDS,
    st.text(max_size=8),
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(repr),
)
BOOLS = st.sampled_from([*BOOL_WORDS, "TRUE", "No", "2", "-1", "00", "01", "+1", "true ", "vrai"])
FITTING_VALUES = {
    "i": st.one_of(NUMBERS, LAX),
    "li": st.one_of(NUMBERS, LAX),
    "oi": st.one_of(NUMBERS, st.sampled_from(["null", "Null", "None", "", "none"])),
    "f": st.one_of(NUMBERS, LAX, st.floats().map(repr), st.sampled_from(["nan", "-NaN", "INF", "+inf"])),
    "b": BOOLS,
}


@st.composite
def queries(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=40))  # raw bytes as a server would pass them on
    parts = []
    for key in draw(st.lists(KEYS, max_size=8)):
        value = draw(st.one_of(FITTING_VALUES[key], VALUES) if key in FITTING_VALUES else VALUES)
        how = draw(st.sampled_from(["plus", "percent", "raw", "bare"]))
        if how == "plus":
            parts.append(quote_plus(key) + "=" + quote_plus(value))
        elif how == "percent":
            parts.append(
                quote(key, safe="") + "=" + quote(value, safe=draw(st.sampled_from(["", "+", "%=&"])))
            )
        elif how == "raw":
            parts.append(key + "=" + value)
        else:
            parts.append(key)
    junk = draw(st.sampled_from(["", "&", "&&", "=", "%", "%zz", "&=&"]))
    return ("&".join(parts) + junk).encode("utf-8")


@pytest.fixture(scope="module")
def query_app() -> tuple[App, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    app = App()
    app.add_api_route("/q", make_handler("q", QUERY_PARAMS, seen), name="q")
    return app, seen


@FUZZ
@given(query=queries())
@example(query=b"i=%1C5")  # int() refused what the lax-integer regex let through: was a 500
@example(query=b"i=0" + b"9" * 5000)  # over int()'s 4300 digits on the lax path: was a 500
@example(query=b"i=1&i=x&li=1&li=%2B2&li=%20%D9%A3&b=Y&oi=null&f=-NaN")
def test_random_query_strings(
    portal: BlockingPortal, query_app: tuple[App, list[dict[str, Any]]], query: bytes
) -> None:
    app, seen = query_app
    expected, failing = reference(query)
    seen.clear()
    reply = portal.call(call, app, scope_for("/q", query=query))
    assert reply.status != 500, (query, reply.body)
    if failing:
        assert reply.status == 422, (query, reply.body, expected)
        assert {tuple(error["loc"][:2]) for error in reply.json()["detail"]} == {
            ("query", k) for k in failing
        }
        assert not seen
    else:
        assert reply.status == 200, (query, reply.body, expected)
        (got,) = seen
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            if key == "li":
                assert len(got[key]) == len(value), (key, got, expected)
                assert all(map(same, value, got[key])), (key, got, expected)
            else:
                assert same(value, got[key]), (key, got[key], value)


# --- paths ------------------------------------------------------------------------------------------

ROUTES: list[tuple[str, str, list[str]]] = [
    ("/", "root", ["GET"]),
    ("/items", "items", ["GET", "POST"]),
    ("/items/special", "special", ["GET"]),
    ("/items/{item_id:int}", "item_int", ["GET", "DELETE"]),
    ("/items/{name}", "item_str", ["GET"]),
    ("/items/{name}/tags", "item_tags", ["GET"]),
    ("/items/{item_id:int}/tags", "item_int_tags", ["PUT"]),  # GET falls back to the str branch
    ("/files/{rest:path}", "files", ["GET"]),
    ("/files/{name}", "file", ["GET"]),  # str beats the catch-all
    ("/users/{uid:uuid}", "user", ["GET"]),
    ("/prices/{p:float}", "price", ["GET"]),
    ("/a/{x:int}/c", "a_int_c", ["GET"]),
    ("/a/{x}/b/{y:int}", "a_str_b", ["GET"]),  # /a/1/b/2: the int branch dead-ends, backtrack
    ("/dir/", "dir", ["GET"]),
    ("/v/{v:int}", "v_get", ["GET"]),
    ("/v/{v:int}", "v_post", ["POST"]),
]
TYPES = {"int": int, "float": float, "uuid": uuid.UUID, "str": str, "path": str}
PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


class Reference:
    """A regex per template (Starlette's convertor regexes), ranked segment by segment:
    static > typed > str > path (each template here has at most one typed sibling)."""

    def __init__(self) -> None:
        self.templates: dict[str, tuple[re.Pattern[str], tuple[int, ...], dict[str, str]]] = {}
        self.methods: dict[str, dict[str, str]] = {}
        for template, name, methods in ROUTES:
            kinds: dict[str, str] = {}
            pattern, rank = "", []
            for segment in template.split("/")[1:]:
                found = PARAM.fullmatch(segment)
                if found is None:
                    pattern, rank = pattern + "/" + re.escape(segment), [*rank, 0]
                    continue
                kind = found.group(2) or "str"
                kinds[found.group(1)] = kind
                pattern += f"/(?P<{found.group(1)}>{CONVERTOR_TYPES[kind].regex})"
                rank.append({"str": 2, "path": 3}.get(kind, 1))
            self.templates[template] = (re.compile(pattern, re.DOTALL), tuple(rank), kinds)
            self.methods.setdefault(template, {}).update(dict.fromkeys(methods, name))
            if "GET" in methods:
                self.methods[template].setdefault("HEAD", name)

    def matches(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for template, (regex, rank, kinds) in self.templates.items():
            match = regex.fullmatch(path)
            if match is None:
                continue
            try:
                params = {k: TYPES[kinds[k]](v) for k, v in match.groupdict().items()}
            except ValueError:  # int() of more than 4300 digits: no match
                continue
            found.append((rank, template, params))
        return [(template, params) for _, template, params in sorted(found, key=lambda item: item[0])]

    def dispatch(self, path: str, method: str) -> tuple[int, Any]:
        matches = self.matches(path)
        for template, params in matches:
            if method in self.methods[template]:
                return 200, {"route": self.methods[template][method], "params": params}
        if matches:
            return 405, ", ".join(sorted({m for t, _ in matches for m in self.methods[t]}))
        if path != "/" and "//" not in path and "\\" not in path:
            other = path[:-1] if path.endswith("/") else path + "/"
            if self.matches(other):
                return 307, other
        return 404, None


SEGMENTS = st.sampled_from(
    [
        *["items", "special", "tags", "files", "users", "prices", "a", "b", "c", "dir", "v", "", ".", ".."],
        *["%", "%2f", "%25", "x y", "\x00", "é", "\n", "?", "#", "\\", "3.5", "-1", "1e3", "007"],
    ]
)
SEGMENT = st.one_of(
    SEGMENTS,
    SEGMENTS,
    st.integers(0, 10**25).map(str),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.text(max_size=5),
)
FITTING = {
    "int": st.integers(0, 10**25).map(str),
    "float": st.one_of(st.integers(0, 10**6).map(str), st.floats(0, 1e6).map(repr)),
    "uuid": st.uuids().map(str),
    "str": SEGMENT,
    "path": st.lists(SEGMENT, max_size=3).map("/".join),
}


@st.composite
def route_like(draw: st.DrawFn) -> str:
    """A path made from a template: its parameters filled (with values that fit, or not), now
    and then a static segment replaced, a segment added or the trailing slash toggled."""
    template = draw(st.sampled_from([template for template, _, _ in ROUTES]))
    segments = []
    for segment in template.split("/")[1:]:
        found = PARAM.fullmatch(segment)
        if found is not None:
            fitting = draw(st.booleans()) or draw(st.booleans())
            segments.append(draw(FITTING[found.group(2) or "str"] if fitting else SEGMENT))
        else:
            segments.append(draw(SEGMENT) if draw(st.integers(0, 7)) == 0 else segment)
    path = "/" + "/".join(segments)
    change = draw(st.integers(0, 5))
    if change == 1:
        return path[:-1] if path.endswith("/") else path + "/"
    if change == 2:
        return path + "/" + draw(SEGMENT)
    return path


PATHS = st.one_of(
    route_like(),
    route_like(),
    st.lists(SEGMENT, max_size=5).map(lambda segments: "/" + "/".join(segments)),
    st.text(max_size=12),  # anything, even without a leading slash
)
METHODS = st.sampled_from(["GET", "GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "PROPFIND"])


@pytest.fixture(scope="module")
def path_app() -> App:
    # Only the table's routes: the reference router knows nothing of /docs, /redoc, /openapi.json.
    app = App(openapi_url=None, docs_url=None, redoc_url=None)
    for template, name, methods in ROUTES:
        params = {k: (TYPES[kind or "str"], ...) for k, kind in PARAM.findall(template)}
        app.add_api_route(template, make_handler(name, params), methods=methods, name=name)
    return app


@FUZZ
@given(path=PATHS, method=METHODS)
@example(path="/items/3", method="GET")  # static > int > str > path, and backtracking:
@example(path="/items/special", method="GET")
@example(path="/items/3/tags", method="GET")
@example(path="/a/1/b/2", method="GET")
@example(path="/files/", method="GET")
@example(path="/files/x", method="GET")
@example(path="/files/%41/", method="GET")
@example(path="/v/1/", method="POST")
@example(path="/items/3", method="PATCH")
def test_random_paths(portal: BlockingPortal, path_app: App, path: str, method: str) -> None:
    status, detail = Reference().dispatch(path, method)
    reply = portal.call(call, path_app, scope_for(path, method=method))
    assert reply.status != 500, reply.body
    assert reply.status == status, (reply.body, detail)
    if status == 200 and method != "HEAD":
        assert reply.json() == {
            "route": detail["route"],
            "params": {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in detail["params"].items()},
        }
    elif status == 405:
        assert reply.headers["allow"] == detail
    elif status == 307:
        location = urlsplit(reply.headers["location"])
        assert (location.netloc, unquote(location.path)) == ("testserver", detail)
