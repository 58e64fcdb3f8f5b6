"""Path templates and a segment trie that matches request paths against them.

Templates look like ``/users/{user_id:int}/files/{rest:path}``. Every parameter is a whole segment;
``{name}`` means ``{name:str}`` and ``path`` (a catch-all over the remainder, ``/`` included) may
only be the last segment. Request paths are percent-decoded strings split on ``/``; a trailing
slash is significant (``/users`` and ``/users/`` are different templates).

Precedence, per node: the static child for the exact segment, then typed parameters (every
convertor but ``str`` and ``path``, in insertion order), then ``str``, then the ``path`` catch-all.
Matching backtracks to the next alternative when a branch dead-ends deeper down. Since every edge
consumes exactly one segment, each trie node is reached by a single route at a fixed depth, so one
lookup visits each node at most once: O(number of trie nodes) convertor checks at worst, plus
O(len(path)) per visited node that owns a ``path`` child. Recursion depth is bounded by the height
of the trie (the longest template), never by the request, so adversarial paths just return None.

Convertor regexes are compiled with ``re.DOTALL`` (Starlette's ``.*`` stops at newlines; here a
``path`` parameter captures any remainder, and ``format`` validates with the same regexes).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, NamedTuple, TypeVar

from starlette import convertors as _sc
from starlette.convertors import Convertor

__all__ = ["DEFAULT_CONVERTERS", "CompiledPath", "PathTrie", "compile_path"]

T = TypeVar("T")

DEFAULT_CONVERTERS: Mapping[str, Convertor[Any]] = MappingProxyType(
    {
        "str": _sc.StringConvertor(),
        "int": _sc.IntegerConvertor(),
        "float": _sc.FloatConvertor(),
        "uuid": _sc.UUIDConvertor(),
        "path": _sc.PathConvertor(),
    }
)

_TYPED, _STR, _PATH = 0, 1, 2  # edge kinds, in precedence order
_Fullmatch = Callable[[str], "re.Match[str] | None"]
_Check = Callable[[str], object]  # truthy = accepted
_Convert = Callable[[str], Any]
_PARAM_RE = re.compile(r"\{([^{}]*)\}")
_FORMAT_ERRORS = (AssertionError, ValueError, TypeError, OverflowError)
# PERF: Starlette's own convertors, called without the method indirection (None = identity)
_FAST_CONVERT: dict[type[Any], _Convert | None] = {
    _sc.StringConvertor: None,
    _sc.PathConvertor: None,
    _sc.IntegerConvertor: int,
    _sc.FloatConvertor: float,
    _sc.UUIDConvertor: uuid.UUID,
}
# (kind, convertor) key, check, convert, child
_Edge = tuple[tuple[int, Convertor[Any]], _Check | None, _Convert | None, "_Node[T]"]


class _Param(NamedTuple):
    name: str
    kind: int
    convertor: Convertor[Any]
    fullmatch: _Fullmatch  # the convertor's regex, always (used by format)
    check: _Check | None  # used by matching; None = fast path (str: non-empty, path: anything)
    convert: _Convert | None  # None = identity (Starlette's own str/path convertors)


@dataclass(frozen=True, slots=True)
class CompiledPath:
    """A parsed path template. Build it with :func:`compile_path`."""

    template: str
    param_names: tuple[str, ...]
    converters: Mapping[str, Convertor[Any]] = field(hash=False)
    is_static: bool
    _segments: tuple[str | _Param, ...] = field(repr=False, compare=False)

    def format(self, params: Mapping[str, Any]) -> str:
        """Build a (percent-decoded) path from parameter values; extra keys are ignored."""
        missing = [name for name in self.param_names if name not in params]
        if missing:
            raise KeyError(f"missing path parameter(s) {', '.join(missing)} for {self.template!r}")
        parts: list[str] = []
        for seg in self._segments:
            if isinstance(seg, str):
                parts.append(seg)
                continue
            value = params[seg.name]
            try:
                text = seg.convertor.to_string(value)
                if not isinstance(text, str) or seg.fullmatch(text) is None:
                    raise ValueError(f"{text!r} does not match {seg.convertor.regex!r}")
            except _FORMAT_ERRORS as exc:
                msg = f"invalid value {value!r} for parameter {seg.name!r} of {self.template!r}: {exc}"
                raise ValueError(msg) from exc
            parts.append(text)
        return "/" + "/".join(parts)


def _ascii_digits(text: str) -> bool:
    return text.isdigit() and text.isascii()


def compile_path(
    template: str, converters: Mapping[str, Convertor[Any]] = DEFAULT_CONVERTERS
) -> CompiledPath:
    """Parse ``template``; raise ValueError with a clear message when it is malformed."""
    if not template.startswith("/"):
        raise ValueError(f"path template {template!r} must start with '/'")
    leftover = _PARAM_RE.sub("", template)
    if "{" in leftover or "}" in leftover:
        raise ValueError(f"unbalanced braces in path template {template!r}")
    raw = template[1:].split("/")
    segments: list[str | _Param] = []
    convs: dict[str, Convertor[Any]] = {}
    for index, seg in enumerate(raw):
        if "{" not in seg and "}" not in seg:
            segments.append(seg)
            continue
        found = _PARAM_RE.fullmatch(seg)
        if found is None:
            raise ValueError(f"a parameter must be a whole path segment: {seg!r} in {template!r}")
        inner = found.group(1)
        if any(char.isspace() for char in inner):
            raise ValueError(f"whitespace is not allowed inside braces: {seg!r} in {template!r}")
        name, colon, conv_name = inner.partition(":")
        if not colon:
            conv_name = "str"
        if not name.isidentifier():
            raise ValueError(f"invalid parameter name {name!r} in {template!r} (must be an identifier)")
        if name in convs:
            raise ValueError(f"duplicate parameter name {name!r} in {template!r}")
        conv = converters.get(conv_name)
        if conv is None:
            known = ", ".join(sorted(converters))
            raise ValueError(f"unknown convertor {conv_name!r} in {template!r} (known: {known})")
        kind = _PATH if conv_name == "path" else _STR if conv_name == "str" else _TYPED
        if kind == _PATH and index != len(raw) - 1:
            raise ValueError(f"path parameter {name!r} must be the last segment of {template!r}")
        fullmatch = re.compile(conv.regex, re.DOTALL).fullmatch
        check: _Check | None = fullmatch
        if (kind == _STR and conv.regex == "[^/]+") or (kind == _PATH and conv.regex == ".*"):
            check = None
        elif type(conv) is _sc.IntegerConvertor and conv.regex == "[0-9]+":
            check = _ascii_digits  # PERF: same language as the regex, ~4x cheaper
        convs[name] = conv
        segments.append(
            _Param(name, kind, conv, fullmatch, check, _FAST_CONVERT.get(type(conv), conv.convert))
        )
    return CompiledPath(template, tuple(convs), MappingProxyType(convs), not convs, tuple(segments))


class _Leaf(Generic[T]):
    __slots__ = ("names", "template", "value")

    def __init__(self, value: T, compiled: CompiledPath) -> None:
        self.value = value
        self.names = compiled.param_names
        self.template = compiled.template


class _Node(Generic[T]):
    __slots__ = ("leaf", "params", "paths", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node[T]] = {}
        self.params: list[_Edge[T]] = []  # typed edges first, then str edges
        self.paths: list[_Edge[T]] = []
        self.leaf: _Leaf[T] | None = None


def _walk(node: _Node[T], segs: list[str], i: int, vals: list[Any]) -> _Leaf[T] | None:
    """First leaf under ``node`` matching ``segs[i:]`` (appending converted values to ``vals``)."""
    if i == len(segs):
        return node.leaf
    seg = segs[i]
    child = node.static.get(seg)
    if child is not None:
        found = _walk(child, segs, i + 1, vals)
        if found is not None:
            return found
    for _, check, convert, child in node.params:
        if check is None:
            if not seg:
                continue
        elif not check(seg):
            continue
        if convert is None:
            vals.append(seg)
        else:
            try:
                vals.append(convert(seg))
            except (ValueError, TypeError):
                continue
        found = _walk(child, segs, i + 1, vals)
        if found is not None:
            return found
        vals.pop()
    if node.paths:
        rest = "/".join(segs[i:])
        for _, check, convert, child in node.paths:
            if child.leaf is None or (check is not None and not check(rest)):
                continue
            try:
                vals.append(rest if convert is None else convert(rest))
            except (ValueError, TypeError):
                continue
            return child.leaf
    return None


def _iter(node: _Node[T], segs: list[str], i: int, vals: list[Any]) -> Iterator[tuple[T, dict[str, Any]]]:
    """Every leaf under ``node`` matching ``segs[i:]``, in precedence order (mirrors :func:`_walk`)."""
    if i == len(segs):
        if node.leaf is not None:
            yield node.leaf.value, dict(zip(node.leaf.names, vals, strict=True))
        return
    seg = segs[i]
    child = node.static.get(seg)
    if child is not None:
        yield from _iter(child, segs, i + 1, vals)
    rest = "/".join(segs[i:]) if node.paths else ""
    for (kind, _), check, convert, child in node.params + node.paths:
        text = rest if kind == _PATH else seg
        if check is None:
            if not text and kind != _PATH:
                continue
        elif not check(text):
            continue
        try:
            value = text if convert is None else convert(text)
        except (ValueError, TypeError):
            continue
        if kind == _PATH:
            if child.leaf is not None:
                yield child.leaf.value, dict(zip(child.leaf.names, [*vals, value], strict=True))
            continue
        vals.append(value)
        yield from _iter(child, segs, i + 1, vals)
        vals.pop()


class PathTrie(Generic[T]):
    """Maps path templates to values and matches request paths (see the module docstring)."""

    __slots__ = ("_count", "_root", "_static")

    def __init__(self) -> None:
        self._static: dict[str, _Leaf[T]] = {}
        self._root: _Node[T] = _Node()
        self._count = 0

    def _locate(self, compiled: CompiledPath, create: bool) -> _Node[T] | None:
        node = self._root
        for seg in compiled._segments:
            if isinstance(seg, str):
                nxt = node.static.get(seg)
                if nxt is None and create:
                    nxt = node.static[seg] = _Node()
            else:
                edges = node.paths if seg.kind == _PATH else node.params
                nxt = next((e[3] for e in edges if e[0][0] == seg.kind and e[0][1] is seg.convertor), None)
                if nxt is None and create:
                    nxt = _Node()
                    position = sum(1 for e in edges if e[0][0] <= seg.kind)  # keep kinds grouped
                    edges.insert(position, ((seg.kind, seg.convertor), seg.check, seg.convert, nxt))
            if nxt is None:
                return None
            node = nxt
        return node

    def insert(self, compiled: CompiledPath, value: T) -> None:
        """Store ``value`` for the template's shape; raise ValueError if that shape is taken."""
        leaf = _Leaf(value, compiled)
        if compiled.is_static:
            existing = self._static.setdefault(compiled.template, leaf)
        else:
            node = self._locate(compiled, create=True)
            assert node is not None
            if node.leaf is None:
                node.leaf = leaf
                self._count += 1
            existing = node.leaf
        if existing is not leaf:
            raise ValueError(f"path template {compiled.template!r} conflicts with {existing.template!r}")

    def get(self, compiled: CompiledPath) -> T | None:
        """The value stored for exactly this template shape, or None."""
        if compiled.is_static:
            leaf = self._static.get(compiled.template)
        else:
            node = self._locate(compiled, create=False)
            leaf = None if node is None else node.leaf
        return leaf.value if leaf is not None else None

    def match(self, path: str) -> tuple[T, dict[str, Any]] | None:
        """The highest-precedence value matching ``path`` with its converted parameters, or None."""
        leaf = self._static.get(path)  # PERF: static routes are one dict lookup, before any splitting
        if leaf is not None:
            return leaf.value, {}
        if not self._count or path[:1] != "/":
            return None
        vals: list[Any] = []
        leaf = _walk(self._root, path.split("/"), 1, vals)
        if leaf is None:
            return None
        return leaf.value, dict(zip(leaf.names, vals))  # noqa: B905 (PERF: lengths equal by construction)

    def iter_matches(self, path: str) -> Iterator[tuple[T, dict[str, Any]]]:
        """Every value matching ``path``, in precedence order (the first one is :meth:`match`'s)."""
        leaf = self._static.get(path)
        if leaf is not None:
            yield leaf.value, {}
        if self._count and path[:1] == "/":
            yield from _iter(self._root, path.split("/"), 1, [])

    def __len__(self) -> int:
        return len(self._static) + self._count
