from __future__ import annotations

import dataclasses
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.convertors import Convertor

from toolkit._trie import DEFAULT_CONVERTERS, CompiledPath, PathTrie, compile_path

UUID_TEXT = "12345678-1234-5678-1234-567812345678"


class HexConvertor(Convertor[int]):
    regex = "[0-9a-f]+"

    def convert(self, value: str) -> int:
        return int(value, 16)

    def to_string(self, value: int) -> str:
        return format(value, "x")


class EvenConvertor(Convertor[int]):
    """Regex accepts any digits; convert rejects odd numbers (a non-match, not an error)."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        number = int(value)
        if number % 2:
            raise ValueError("odd")
        return number

    def to_string(self, value: int) -> str:
        return str(value)


class TypeErrorConvertor(Convertor[str]):
    regex = "[a-z]+"

    def convert(self, value: str) -> str:
        raise TypeError("nope")

    def to_string(self, value: str) -> str:
        return value


class BadToStringConvertor(Convertor[int]):
    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return f"n{value}"


class LowerConvertor(Convertor[str]):
    regex = "[a-z]+"

    def convert(self, value: str) -> str:
        return value.upper()

    def to_string(self, value: str) -> str:
        return value.lower()


CONVS: dict[str, Convertor[Any]] = {
    **DEFAULT_CONVERTERS,
    "hex": HexConvertor(),
    "even": EvenConvertor(),
    "typeerr": TypeErrorConvertor(),
    "bad": BadToStringConvertor(),
}


def build(*templates: str, converters: Mapping[str, Convertor[Any]] = CONVS) -> PathTrie[str]:
    trie: PathTrie[str] = PathTrie()
    for template in templates:
        trie.insert(compile_path(template, converters), template)
    return trie


def all_matches(trie: PathTrie[str], path: str) -> list[tuple[str, dict[str, Any]]]:
    return list(trie.iter_matches(path))


# --- compile_path ---------------------------------------------------------------------------------


def test_compile_static() -> None:
    compiled = compile_path("/users/me")
    assert compiled.template == "/users/me"
    assert compiled.param_names == ()
    assert dict(compiled.converters) == {}
    assert compiled.is_static


def test_compile_dynamic() -> None:
    compiled = compile_path("/users/{user_id:int}/files/{name}/{rest:path}")
    assert compiled.param_names == ("user_id", "name", "rest")
    assert compiled.converters["user_id"] is DEFAULT_CONVERTERS["int"]
    assert compiled.converters["name"] is DEFAULT_CONVERTERS["str"]  # {name} means {name:str}
    assert compiled.converters["rest"] is DEFAULT_CONVERTERS["path"]
    assert not compiled.is_static


def test_default_converters() -> None:
    assert set(DEFAULT_CONVERTERS) == {"str", "int", "float", "uuid", "path"}
    assert all(isinstance(conv, Convertor) for conv in DEFAULT_CONVERTERS.values())
    with pytest.raises(TypeError):
        DEFAULT_CONVERTERS["x"] = HexConvertor()  # type: ignore[index]


def test_compiled_path_is_immutable_and_hashable() -> None:
    compiled = compile_path("/a/{b:int}")
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled.template = "/x"  # type: ignore[misc]
    assert compiled == compile_path("/a/{b:int}")
    assert hash(compiled) == hash(compile_path("/a/{b:int}"))
    assert compiled != compile_path("/a/{c:int}")
    assert isinstance(compiled, CompiledPath)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("users", "must start with '/'"),
        ("", "must start with '/'"),
        ("{x}", "must start with '/'"),
        ("/{x:nope}", "unknown convertor 'nope'"),
        ("/{x:}", "unknown convertor ''"),
        ("/{x}/{x:int}", "duplicate parameter name 'x'"),
        ("/{1x}", "invalid parameter name '1x'"),
        ("/{}", "invalid parameter name ''"),
        ("/{:int}", "invalid parameter name ''"),
        ("/{x-y}", "invalid parameter name 'x-y'"),
        ("/{x:int:int}", "unknown convertor 'int:int'"),
        ("/files/{name}.txt", "must be a whole path segment"),
        ("/a{b}", "must be a whole path segment"),
        ("/{a}{b}", "must be a whole path segment"),
        ("/{a/b}", "must be a whole path segment"),
        ("/{rest:path}/more", "'rest' must be the last segment"),
        ("/{rest:path}/", "'rest' must be the last segment"),
        ("/{a", "unbalanced braces"),
        ("/a}", "unbalanced braces"),
        ("/}{", "unbalanced braces"),
        ("/{{a}}", "unbalanced braces"),
        ("/{ x }", "whitespace is not allowed"),
        ("/{x: int}", "whitespace is not allowed"),
        ("/{x\t}", "whitespace is not allowed"),
    ],
)
def test_compile_errors(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        compile_path(template)


def test_unknown_convertor_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="known: float, int, path, str, uuid"):
        compile_path("/{x:hex}")
    assert compile_path("/{x:hex}", CONVS).converters["x"] is CONVS["hex"]


# --- format -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "params", "expected"),
    [
        ("/", {}, "/"),
        ("/users/", {}, "/users/"),
        ("/users/{id:int}", {"id": 42}, "/users/42"),
        ("/u/{name}/x", {"name": "b c"}, "/u/b c/x"),
        ("/f/{v:float}", {"v": 1.5}, "/f/1.5"),
        ("/f/{v:float}", {"v": 2.0}, "/f/2"),
        ("/id/{u:uuid}", {"u": uuid.UUID(UUID_TEXT)}, f"/id/{UUID_TEXT}"),
        ("/files/{rest:path}", {"rest": "a/b/c.txt"}, "/files/a/b/c.txt"),
        ("/files/{rest:path}", {"rest": ""}, "/files/"),
        ("/h/{n:hex}", {"n": 255}, "/h/ff"),
        ("/a/{x}/{y:int}", {"x": "q", "y": 0, "extra": "ignored"}, "/a/q/0"),
    ],
)
def test_format_round_trip(template: str, params: dict[str, Any], expected: str) -> None:
    compiled = compile_path(template, CONVS)
    assert compiled.format(params) == expected
    trie: PathTrie[str] = PathTrie()
    trie.insert(compiled, template)
    params.pop("extra", None)
    assert trie.match(expected) == (template, params)


def test_format_missing_params() -> None:
    compiled = compile_path("/a/{x}/{y:int}/{z}")
    with pytest.raises(KeyError, match="x, z"):
        compiled.format({"y": 1})


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("/{x}", "a/b"),  # "/" in a str param
        ("/{x}", ""),
        ("/{x:int}", -1),
        ("/{x:int}", "abc"),
        ("/{x:float}", math.nan),
        ("/{x:float}", math.inf),
        ("/{x:float}", -1.5),
        ("/{x:uuid}", "not-a-uuid"),  # to_string result does not match the regex
        ("/{x:bad}", 5),  # custom to_string result does not match the regex
        ("/{x:hex}", "zz"),  # to_string raises ValueError
        ("/{x:hex}", None),  # to_string raises TypeError
    ],
)
def test_format_invalid_values(template: str, value: Any) -> None:
    compiled = compile_path(template, CONVS)
    with pytest.raises(ValueError, match=r"invalid value .* for parameter 'x'"):
        compiled.format({"x": value})


# --- matching -----------------------------------------------------------------------------------------


def test_static_lookup() -> None:
    trie = build("/", "/users", "/users/me", "/a//b")
    assert trie.match("/users") == ("/users", {})
    assert trie.match("/users/me") == ("/users/me", {})
    assert trie.match("/a//b") == ("/a//b", {})  # empty middle segment matches literally
    assert trie.match("/users/you") is None
    assert trie.match("/nope") is None
    assert trie.match("") is None
    assert len(trie) == 4


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/v/{x}", "/v/hello world", "hello world"),
        ("/v/{x:int}", "/v/42", 42),
        ("/v/{x:int}", "/v/007", 7),
        ("/v/{x:float}", "/v/3.25", 3.25),
        ("/v/{x:float}", "/v/3", 3.0),
        ("/v/{x:uuid}", f"/v/{UUID_TEXT}", uuid.UUID(UUID_TEXT)),
        ("/v/{x:uuid}", f"/v/{UUID_TEXT.replace('-', '').upper()}", uuid.UUID(UUID_TEXT)),
        ("/v/{x:path}", "/v/a/b/c", "a/b/c"),
        ("/v/{x:path}", "/v/", ""),
        ("/v/{x:path}", "/v//a//", "/a//"),
        ("/v/{x:path}", "/v/line\nbreak", "line\nbreak"),
        ("/v/{x:hex}", "/v/ff", 255),
    ],
)
def test_convertors(template: str, path: str, expected: Any) -> None:
    result = build(template).match(path)
    assert result is not None
    assert result[1] == {"x": expected}
    assert type(result[1]["x"]) is type(expected)


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/v/{x}", "/v/"),
        ("/v/{x}", "/v"),
        ("/v/{x}", "/v/a/b"),
        ("/v/{x:int}", "/v/-1"),
        ("/v/{x:int}", "/v/1.5"),
        ("/v/{x:int}", "/v/abc"),
        ("/v/{x:int}", "/v/"),
        ("/v/{x:float}", "/v/1e5"),
        ("/v/{x:float}", "/v/.5"),
        ("/v/{x:uuid}", "/v/1234"),
        ("/v/{x:path}", "/v"),
        ("/v/{x:even}", "/v/3"),  # convert raises ValueError -> no match
        ("/v/{x:typeerr}", "/v/abc"),  # convert raises TypeError -> no match
    ],
)
def test_convertor_mismatch(template: str, path: str) -> None:
    trie = build(template)
    assert trie.match(path) is None
    assert all_matches(trie, path) == []


def test_precedence_static_typed_str_path() -> None:
    templates = ["/p/{rest:path}", "/p/{s}", "/p/{i:int}", "/p/static"]
    for trie in (build(*templates), build(*reversed(templates))):
        assert trie.match("/p/static") == ("/p/static", {})
        assert trie.match("/p/5") == ("/p/{i:int}", {"i": 5})
        assert trie.match("/p/x") == ("/p/{s}", {"s": "x"})
        assert trie.match("/p/x/y") == ("/p/{rest:path}", {"rest": "x/y"})
        assert trie.match("/p/") == ("/p/{rest:path}", {"rest": ""})
        assert [t for t, _ in all_matches(trie, "/p/static")] == ["/p/static", "/p/{s}", "/p/{rest:path}"]
        assert all_matches(trie, "/p/5") == [
            ("/p/{i:int}", {"i": 5}),
            ("/p/{s}", {"s": "5"}),
            ("/p/{rest:path}", {"rest": "5"}),
        ]


@pytest.mark.parametrize("first", ["int", "float"])
def test_typed_params_in_insertion_order(first: str) -> None:
    second = "float" if first == "int" else "int"
    trie = build(f"/t/{{a:{first}}}", f"/t/{{b:{second}}}")
    result = trie.match("/t/5")
    assert result is not None
    assert result[0] == f"/t/{{a:{first}}}"
    assert [t for t, _ in all_matches(trie, "/t/5")] == [f"/t/{{a:{first}}}", f"/t/{{b:{second}}}"]
    float_name = "a" if first == "float" else "b"
    assert trie.match("/t/5.5") == (f"/t/{{{float_name}:float}}", {float_name: 5.5})


@pytest.mark.parametrize(
    ("templates", "path", "expected"),
    [
        (["/a/static/x", "/a/{p}/y"], "/a/static/y", ("/a/{p}/y", {"p": "static"})),
        (
            ["/files/{id:int}/raw", "/files/{name}/meta"],
            "/files/12/meta",
            ("/files/{name}/meta", {"name": "12"}),
        ),
        (["/files/{id:int}/raw", "/files/{name}/meta"], "/files/12/raw", ("/files/{id:int}/raw", {"id": 12})),
        (["/a/{x:int}/b/c", "/a/{y}/b/d"], "/a/1/b/d", ("/a/{y}/b/d", {"y": "1"})),
        (["/n/{a:int}/x", "/n/{b:float}/y"], "/n/5/y", ("/n/{b:float}/y", {"b": 5.0})),
        (["/a/{x:int}/{y:int}/z", "/a/{p}/{q}/w"], "/a/1/2/w", ("/a/{p}/{q}/w", {"p": "1", "q": "2"})),
        (["/a/{x}/c/d", "/a/{rest:path}"], "/a/b/c", ("/a/{rest:path}", {"rest": "b/c"})),
        (["/a/b/{x:int}", "/a/{y}/{z}"], "/a/b/c", ("/a/{y}/{z}", {"y": "b", "z": "c"})),
        (["/a/{x:even}/e", "/a/{y:int}/e"], "/a/3/e", ("/a/{y:int}/e", {"y": 3})),
        (["/a/b/c/{d}", "/a/{rest:path}"], "/a/b/c/", ("/a/{rest:path}", {"rest": "b/c/"})),
    ],
)
def test_backtracking(templates: list[str], path: str, expected: tuple[str, dict[str, Any]]) -> None:
    for trie in (build(*templates), build(*reversed(templates))):
        assert trie.match(path) == expected


def test_trailing_slash_is_significant() -> None:
    trie = build("/users", "/users/", "/items/{id}", "/things/{id}/")
    assert trie.match("/users") == ("/users", {})
    assert trie.match("/users/") == ("/users/", {})
    assert trie.match("/items/3") == ("/items/{id}", {"id": "3"})
    assert trie.match("/items/3/") is None
    assert trie.match("/items/") is None
    assert trie.match("/things/3/") == ("/things/{id}/", {"id": "3"})
    assert trie.match("/things/3") is None


def test_root() -> None:
    trie = build("/{x}")
    assert trie.match("/") is None
    trie.insert(compile_path("/"), "/")
    assert trie.match("/") == ("/", {})
    assert trie.match("/a") == ("/{x}", {"x": "a"})
    assert trie.match("") is None
    assert trie.match("a") is None
    assert build("/{rest:path}").match("/") == ("/{rest:path}", {"rest": ""})


def test_empty_middle_segments_never_match_params() -> None:
    trie = build("/a/{x}/b", "/a/{n:int}/c")
    assert trie.match("/a//b") is None
    assert trie.match("/a//c") is None


def test_iter_matches_order_with_static_first() -> None:
    trie = build("/x/{rest:path}", "/x/{a}/{b}", "/x/{a:int}/{b}", "/x/1/{b:int}", "/x/1/2")
    assert all_matches(trie, "/x/1/2") == [
        ("/x/1/2", {}),
        ("/x/1/{b:int}", {"b": 2}),
        ("/x/{a:int}/{b}", {"a": 1, "b": "2"}),
        ("/x/{a}/{b}", {"a": "1", "b": "2"}),
        ("/x/{rest:path}", {"rest": "1/2"}),
    ]
    assert trie.match("/x/1/2") == ("/x/1/2", {})
    assert all_matches(trie, "/nope") == []
    assert all_matches(PathTrie(), "/x") == []


def test_conflicts() -> None:
    trie = build("/u/{a}", "/u/{a:int}", "/s", "/f/{rest:path}")
    for template, existing in [
        ("/u/{b:str}", "/u/{a}"),
        ("/u/{b:int}", "/u/{a:int}"),
        ("/s", "/s"),
        ("/f/{other:path}", "/f/{rest:path}"),
    ]:
        with pytest.raises(ValueError, match=re.escape(f"conflicts with {existing!r}")):
            trie.insert(compile_path(template), "dup")
    assert len(trie) == 4
    trie.insert(compile_path("/u/{b:float}"), "ok")  # different convertor: different shape
    trie.insert(compile_path("/u/{a}/"), "ok")
    assert len(trie) == 6


def test_same_name_different_convertor_instances_are_different_shapes() -> None:
    trie = build("/v/{x:int}")
    other: dict[str, Convertor[Any]] = {**DEFAULT_CONVERTERS, "int": EvenConvertor()}
    trie.insert(compile_path("/v/{y:int}", other), "even")
    assert trie.match("/v/3") == ("/v/{x:int}", {"x": 3})
    assert len(trie) == 2


def test_get() -> None:
    trie = build("/s", "/u/{a:int}/x", "/f/{rest:path}")
    assert trie.get(compile_path("/s")) == "/s"
    assert trie.get(compile_path("/u/{other:int}/x")) == "/u/{a:int}/x"
    assert trie.get(compile_path("/f/{p:path}")) == "/f/{rest:path}"
    assert trie.get(compile_path("/u/{a}/x")) is None
    assert trie.get(compile_path("/u/{a:int}")) is None  # intermediate node, no leaf
    assert trie.get(compile_path("/u/{a:int}/y")) is None
    assert trie.get(compile_path("/nope")) is None
    assert trie.get(compile_path("/f/{p}")) is None


def test_custom_convertors() -> None:
    trie = build("/c/{n:hex}", "/c/{n:even}/e", "/c/{s}/e")
    assert trie.match("/c/ff") == ("/c/{n:hex}", {"n": 255})
    assert trie.match("/c/10") == ("/c/{n:hex}", {"n": 16})
    assert trie.match("/c/4/e") == ("/c/{n:even}/e", {"n": 4})
    assert trie.match("/c/5/e") == ("/c/{s}/e", {"s": "5"})
    assert trie.match("/c/zz") is None


def test_overridden_str_and_path_convertors() -> None:
    convs: dict[str, Convertor[Any]] = {"str": LowerConvertor(), "path": HexConvertor()}
    trie = build("/s/{x}", "/p/{rest:path}", converters=convs)
    assert trie.match("/s/abc") == ("/s/{x}", {"x": "ABC"})
    assert trie.match("/s/ABC") is None
    assert trie.match("/p/ff") == ("/p/{rest:path}", {"rest": 255})
    assert trie.match("/p/f/f") is None
    assert all_matches(trie, "/p/zz") == []


def test_adversarial_inputs() -> None:
    trie = build("/a/{x}/b", "/a/{n:int}", "/a/{f:float}/{u:uuid}", "/r/{rest:path}", "/s/{x}/{y}/{z}")
    many = "/a" * 10_000
    assert trie.match(many) is None
    assert all_matches(trie, many) == []
    assert trie.match("/" * 10_000) is None
    assert trie.match("/a/%00") is None
    assert trie.match("/a/%00/b") == ("/a/{x}/b", {"x": "%00"})
    assert trie.match("/a/\x00/b") == ("/a/{x}/b", {"x": "\x00"})
    long = "9" * 100_000  # int() refuses > 4300 digits: ValueError, treated as a non-match
    assert trie.match(f"/a/{long}") is None
    assert trie.match(f"/a/{long}/b") == ("/a/{x}/b", {"x": long})
    assert trie.match("/r" + many) == ("/r/{rest:path}", {"rest": many[1:]})
    assert trie.match("/s/1/2/3/4/5") is None
    assert trie.match("\x00") is None


def test_deep_template_and_long_path() -> None:
    template = "/" + "/".join(f"{{p{i}}}" for i in range(200))
    trie = build(template)
    path = "/" + "/".join(str(i) for i in range(200))
    result = trie.match(path)
    assert result is not None
    assert result[1]["p199"] == "199"
    assert trie.match(path + "/x" * 10_000) is None


def test_len_and_empty_trie() -> None:
    trie: PathTrie[int] = PathTrie()
    assert len(trie) == 0
    assert trie.match("/") is None
    trie.insert(compile_path("/a/{x}"), 0)
    trie.insert(compile_path("/a"), 0)
    assert len(trie) == 2
    assert trie.match("/a/b") == (0, {"x": "b"})


def test_values_may_be_falsy_or_none() -> None:
    trie: PathTrie[int | None] = PathTrie()
    trie.insert(compile_path("/z"), 0)
    trie.insert(compile_path("/z/{x}"), None)
    assert trie.match("/z") == (0, {})
    assert trie.match("/z/q") == (None, {"x": "q"})


# --- property test against a reference regex matcher -------------------------------------------------

STATIC_SEGMENTS = ["a", "b", "1", ""]
PARAM_KINDS = ["str", "int", "float", "uuid", "hex", "even"]
PATH_SEGMENTS = ["a", "b", "1", "2", "12", "3.5", "ab", "", "x y", UUID_TEXT, "ff", "\n"]

segment_st = st.one_of(st.sampled_from(STATIC_SEGMENTS), st.sampled_from(PARAM_KINDS).map(lambda k: (k,)))
template_st = st.tuples(st.lists(segment_st, max_size=4), st.booleans()).map(
    lambda t: (*t[0], ("path",)) if t[1] else tuple(t[0]) or ("",)  # "/" is the root: one empty segment
)
path_st = st.one_of(
    st.lists(st.sampled_from(PATH_SEGMENTS), max_size=6).map(lambda segs: "/" + "/".join(segs)),
    st.text(alphabet="/ab1.\x00%", max_size=12),
)


def render(spec: tuple[str | tuple[str], ...]) -> str:
    parts = [seg if isinstance(seg, str) else f"{{p{i}:{seg[0]}}}" for i, seg in enumerate(spec)]
    return "/" + "/".join(parts)


def reference_regex(spec: tuple[str | tuple[str], ...]) -> re.Pattern[str]:
    parts = [
        re.escape(seg) if isinstance(seg, str) else f"(?P<p{i}>{CONVS[seg[0]].regex})"
        for i, seg in enumerate(spec)
    ]
    return re.compile("/" + "/".join(parts), re.DOTALL)


def precedence_key(
    spec: tuple[str | tuple[str], ...], inserted: list[tuple[str | tuple[str], ...]]
) -> tuple[tuple[int, ...], ...]:
    """Lexicographic precedence: static < typed (first insertion at that trie node) < str < path."""
    key: list[tuple[int, ...]] = []
    for k, seg in enumerate(spec):
        if isinstance(seg, str):
            key.append((0,))
        elif seg[0] == "str":
            key.append((2,))
        elif seg[0] == "path":
            key.append((3,))
        else:
            first = next(j for j, other in enumerate(inserted) if other[: k + 1] == spec[: k + 1])
            key.append((1, first))
    return tuple(key)


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(template_st, max_size=8), paths=st.lists(path_st, min_size=1, max_size=6))
def test_matches_reference_implementation(
    specs: list[tuple[str | tuple[str], ...]], paths: list[str]
) -> None:
    trie: PathTrie[int] = PathTrie()
    inserted: list[tuple[str | tuple[str], ...]] = []
    for spec in specs:
        try:
            trie.insert(compile_path(render(spec), CONVS), len(inserted))
        except ValueError:
            assert spec in inserted  # conflicts happen exactly for an already-inserted shape
        else:
            assert spec not in inserted
            inserted.append(spec)
    assert len(trie) == len(inserted)
    for path in paths + [render(spec) for spec in inserted]:
        expected = []
        for index, spec in enumerate(inserted):
            found = reference_regex(spec).fullmatch(path)
            if found is None:
                continue
            try:
                params = {
                    name: CONVS[spec[int(name[1:])][0]].convert(text)
                    for name, text in found.groupdict().items()
                }
            except ValueError:
                continue
            expected.append((precedence_key(spec, inserted), index, params))
        expected.sort(key=lambda item: item[0])
        got = list(trie.iter_matches(path))
        assert got == [(index, params) for _, index, params in expected]
        assert trie.match(path) == (got[0] if got else None)
