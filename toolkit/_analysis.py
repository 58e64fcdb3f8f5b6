"""Read a handler's (or dependency's) signature once, at registration, into plain specs.

Nothing here runs per request. Every decision about where a parameter comes from is made
here, and every misconfiguration raises ``RouteConfigError`` naming the callable.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from ._injectables import injectable_for
from ._types import (
    MIGRATING,
    attach_meta,
    check_msgspec_type,
    is_model,
    is_scalar,
    refuse_pydantic,
    sequence_item,
    split_optional,
    unwrap_annotated,
    upload_kind,
)
from .di import Depends
from .exceptions import RouteConfigError
from .params import UNSET, Body, File, Form, Header, Param, Path, Query


def describe(call: Any) -> str:
    """A readable name for error messages: ``module.qualname``."""
    target = call if inspect.isroutine(call) or inspect.isclass(call) else type(call)
    module = getattr(target, "__module__", "?")
    return f"{module}.{getattr(target, '__qualname__', repr(call))}"


@dataclasses.dataclass(slots=True)
class ScalarSpec:
    """A path, query, header or cookie parameter."""

    name: str  # keyword argument
    source: str  # path | query | header | cookie
    key: str  # name on the wire (alias; lower-case for headers)
    annotation: Any  # type with constraints attached, as msgspec validates it
    default: Any  # UNSET when required
    is_sequence: bool
    marker: Param
    # A model of parameters (``filters: Annotated[FilterParams, Query()]``): one spec per field,
    # read from the wire by its own key and validated together as the model.
    model_fields: tuple[ScalarSpec, ...] = ()
    forbid_unknown: bool = False  # the model refuses keys it does not declare


@dataclasses.dataclass(slots=True)
class BodySpec:
    name: str
    key: str
    annotation: Any
    default: Any
    marker: Body
    embed: bool


@dataclasses.dataclass(slots=True)
class FormSpec:
    name: str
    key: str
    annotation: Any
    default: Any
    marker: Form
    file_kind: str | None  # None (plain field) | "upload" | "bytes" | "uploads" | "bytes_list"
    whole_form: bool  # the parameter is a model filled from every field


@dataclasses.dataclass(slots=True)
class Dependant:
    """One callable (handler or dependency) and where each of its arguments comes from."""

    call: Callable[..., Any]
    name: str
    scalars: list[ScalarSpec] = dataclasses.field(default_factory=list)
    bodies: list[BodySpec] = dataclasses.field(default_factory=list)
    forms: list[FormSpec] = dataclasses.field(default_factory=list)
    specials: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (kwarg, injectable kind)
    dependencies: list[tuple[str | None, Depends, Dependant]] = dataclasses.field(default_factory=list)
    is_coroutine: bool = False
    is_async_gen: bool = False
    is_gen: bool = False
    key: Any = None  # the declared callable (differs from ``call`` when overridden)

    def __post_init__(self) -> None:
        if self.key is None:
            self.key = self.call

    def all_keys(self) -> set[Any]:
        """Every dependency callable in this tree (what overrides are matched against)."""
        keys = set()
        for _, _, sub in self.dependencies:
            keys.add(sub.key)
            keys |= sub.all_keys()
        return keys


def _signature(call: Callable[..., Any], owner: str) -> tuple[inspect.Signature, dict[str, Any]]:
    target = call
    if inspect.isclass(call):
        target = call.__init__
    elif not inspect.isroutine(call) and callable(call):
        target = call.__call__  # type: ignore[operator]
    try:
        signature = inspect.signature(call)
        hints = typing.get_type_hints(target, include_extras=True)
        if inspect.isclass(call) and issubclass(call, msgspec.Struct):
            # A Struct's ``__init__`` is built in C, without annotations: its fields have them
            # (``Annotated[Filters, Depends()]``, FastAPI's "class as a dependency").
            hints = {**typing.get_type_hints(call, include_extras=True), **hints}
    except (NameError, TypeError) as exc:
        raise RouteConfigError(f"{owner}: cannot resolve the type hints: {exc}") from exc
    return signature, hints


def _call_kind(call: Callable[..., Any]) -> tuple[bool, bool, bool]:
    """``(is_coroutine, is_async_gen, is_gen)`` for functions, classes and callable instances."""
    if inspect.isclass(call):
        return False, False, False
    target = call if inspect.isroutine(call) else getattr(call, "__call__", call)  # noqa: B004
    while hasattr(target, "__wrapped__") and not inspect.isfunction(target):
        target = target.__wrapped__
    return (
        inspect.iscoroutinefunction(target),
        inspect.isasyncgenfunction(target),
        inspect.isgeneratorfunction(target),
    )


def analyze(
    call: Callable[..., Any],
    path_params: Mapping[str, Any],
    *,
    owner: str | None = None,
    stack: tuple[Callable[..., Any], ...] = (),
    overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
) -> Dependant:
    """Build the ``Dependant`` tree of ``call``.

    ``path_params`` maps each path parameter name of the route to the type its convertor yields.
    """
    owner = owner or describe(call)
    if call in stack:
        chain = " -> ".join(describe(c) for c in (*stack, call))
        raise RouteConfigError(f"dependency cycle: {chain}")
    signature, hints = _signature(call, owner)
    is_coroutine, is_async_gen, is_gen = _call_kind(call)
    dependant = Dependant(
        call=call, name=owner, is_coroutine=is_coroutine, is_async_gen=is_async_gen, is_gen=is_gen
    )
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise RouteConfigError(f"{owner}: positional-only parameter {param.name!r} is not supported")
        _analyze_param(dependant, param, hints.get(param.name, Any), path_params, (*stack, call), overrides)
    return dependant


def analyze_dependency(
    call: Callable[..., Any],
    path_params: Mapping[str, Any],
    stack: tuple[Callable[..., Any], ...] = (),
    overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
) -> Dependant:
    """Analyze a dependency, or its replacement from ``app.dependency_overrides``.

    The result keeps the original callable as ``key`` (the per-request cache key and the
    identity overrides and app-scoped values are looked up by).
    """
    replacement = overrides.get(call, call) if overrides else call
    dependant = analyze(
        replacement, path_params, owner=describe(replacement), stack=stack, overrides=overrides
    )
    dependant.key = call
    return dependant


def _analyze_param(
    dependant: Dependant,
    param: inspect.Parameter,
    hint: Any,
    path_params: Mapping[str, Any],
    stack: tuple[Callable[..., Any], ...],
    overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None,
) -> None:
    # The dependency chain from the handler, so the message says which use of a shared
    # dependency is meant: ``app.read_item -> app.get_user: parameter 'token' ...``.
    chain = " -> ".join([*(describe(c) for c in stack[:-1]), dependant.name])
    where = f"{chain}: parameter {param.name!r}"
    annotation, metadata = unwrap_annotated(hint)
    refuse_pydantic(annotation, where)
    default: Any = UNSET if param.default is inspect.Parameter.empty else param.default
    refuse_foreign_markers([*metadata, default], where)
    if isinstance(default, msgspec.Meta):
        raise RouteConfigError(
            f"{where}: a msgspec.Meta default is not a constraint; write "
            f"Annotated[<type>, msgspec.Meta(...)] and give the default after '=' ({MIGRATING})"
        )
    markers = [m for m in metadata if isinstance(m, (Param, Depends))]
    metas = [m for m in metadata if isinstance(m, msgspec.Meta)]
    if isinstance(default, (Param, Depends)):
        markers.append(default)
        default = UNSET
    if len(markers) > 1:
        raise RouteConfigError(f"{where} has more than one marker: {markers}")
    marker = markers[0] if markers else None

    if isinstance(marker, Depends):
        call = marker.dependency if marker.dependency is not None else annotation
        if not callable(call):
            raise RouteConfigError(f"{where}: Depends() needs a callable or a class annotation")
        dependant.dependencies.append(
            (param.name, marker, analyze_dependency(call, path_params, stack, overrides))
        )
        return
    if marker is None:
        injectable = injectable_for(annotation)
        if injectable is not None:
            dependant.specials.append((param.name, injectable.kind))
            return
        if param.annotation is inspect.Parameter.empty and param.name not in path_params:
            marker = Query()  # an unannotated parameter is a query string, as in FastAPI
        else:
            marker = _infer_marker(param.name, annotation, path_params, where)
    if marker.default is not UNSET:
        if default is not UNSET:
            raise RouteConfigError(f"{where}: give the default either in the marker or after '=', not both")
        default = marker.default
    if (meta := marker.meta()) is not None:
        metas.append(meta)
    full = attach_meta(annotation, metas)

    if isinstance(marker, Form):
        _add_form(dependant, param.name, annotation, full, default, marker, where)
    elif isinstance(marker, Body):
        check_msgspec_type(full, where)
        key = marker.alias or param.name
        dependant.bodies.append(BodySpec(param.name, key, full, default, marker, marker.embed))
    else:
        _add_scalar(dependant, param.name, annotation, full, default, marker, path_params, where)


def refuse_foreign_markers(values: list[Any], where: str) -> None:
    """A marker of FastAPI's (``fastapi.Depends``, ``Query``...) left in a ported file would be
    taken for a default value: refuse it, naming the import to change."""
    for value in values:
        module = type(value).__module__
        if module == "fastapi" or module.startswith(("fastapi.", "pydantic.")):
            name = type(value).__name__
            raise RouteConfigError(
                f"{where}: {module}.{name}(...) is FastAPI's; import {name} from toolkit ({MIGRATING})"
            )


def _infer_marker(name: str, annotation: Any, path_params: Mapping[str, Any], where: str) -> Param:
    if name in path_params:
        return Path()
    if upload_kind(annotation) in ("upload", "uploads"):
        return File()
    if is_scalar(annotation) or sequence_item(annotation) is not None or annotation is Any:
        return Query()  # ``Any``: the string as sent, as in FastAPI
    bare, _ = split_optional(annotation)
    origin = typing.get_origin(bare) or bare
    if is_model(bare) or origin in (dict, list, set, tuple, frozenset):
        return Body()
    raise RouteConfigError(
        f"{where}: cannot tell where a value of type {annotation!r} comes from; "
        "annotate it with Query(), Path(), Header(), Cookie(), Body(), Form() or Depends()"
    )


def _add_scalar(
    dependant: Dependant,
    name: str,
    annotation: Any,
    full: Any,
    default: Any,
    marker: Param,
    path_params: Mapping[str, Any],
    where: str,
) -> None:
    source = marker.source
    key = marker.alias or name
    if isinstance(marker, Header):
        if marker.alias is None and marker.convert_underscores:
            key = key.replace("_", "-")
        key = key.lower()
    if isinstance(marker, Path):
        if key not in path_params:
            raise RouteConfigError(f"{where} is declared Path() but the route has no {{{key}}} segment")
        if default is not UNSET:
            raise RouteConfigError(f"{where}: a path parameter cannot have a default")
    if source != "path" and is_model(annotation) and not split_optional(annotation)[1]:
        if default is not UNSET:
            raise RouteConfigError(f"{where}: a parameter model takes its defaults from its fields")
        model = _model_param(name, annotation, full, marker, where)
        dependant.scalars.append(model)
        return
    is_sequence = sequence_item(annotation) is not None
    if not (is_scalar(annotation) or is_sequence or annotation is Any):  # Any: the string as sent
        raise RouteConfigError(
            f"{where}: a {source} parameter must be a scalar (str, int, float, bool, enum, Literal, UUID, "
            f"date/time, Decimal) or a list of them, not {annotation!r}"
        )
    if is_sequence and source == "path":
        raise RouteConfigError(f"{where}: a path parameter cannot be a list")
    check_msgspec_type(full, where)
    dependant.scalars.append(ScalarSpec(name, source, key, full, default, is_sequence, marker))


def _model_param(name: str, model: Any, full: Any, marker: Param, where: str) -> ScalarSpec:
    """A Struct, dataclass or TypedDict of query/header/cookie parameters (FastAPI's parameter
    models): each field is read by its own key and the model is validated as a whole."""
    check_msgspec_type(full, where)
    info = msgspec.inspect.type_info(model)
    hints = typing.get_type_hints(model, include_extras=True)
    forbid = bool(getattr(info, "forbid_unknown_fields", False))
    if forbid and isinstance(marker, Header):
        raise RouteConfigError(
            f"{where}: a header model cannot forbid unknown fields: every request carries headers it "
            "does not declare (Host, User-Agent...)"
        )
    fields = []
    for field in info.fields:  # type: ignore[attr-defined]
        annotation = hints[field.name]
        key = field.encode_name
        if isinstance(marker, Header):
            key = (key.replace("_", "-") if marker.convert_underscores else key).lower()
        is_sequence = sequence_item(annotation) is not None
        if not (is_scalar(annotation) or is_sequence or unwrap_annotated(annotation)[0] is Any):
            raise RouteConfigError(
                f"{where}: field {field.name!r} of {model.__qualname__} must be a scalar or a list of "
                f"scalars to be read from the {marker.source}, not {annotation!r}"
            )
        required = field.required
        field_default = UNSET if required else _field_default(field)
        fields.append(
            ScalarSpec(field.encode_name, marker.source, key, annotation, field_default, is_sequence, marker)
        )
    # Always given (the model is made from whichever of its keys the request has), so no default.
    return ScalarSpec(name, marker.source, name, full, UNSET, False, marker, tuple(fields), forbid)


def _field_default(field: Any) -> Any:
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return UNSET


def _add_form(
    dependant: Dependant,
    name: str,
    annotation: Any,
    full: Any,
    default: Any,
    marker: Form,
    where: str,
) -> None:
    key = marker.alias or name
    file_kind = upload_kind(annotation)
    if isinstance(marker, File) and file_kind is None:
        raise RouteConfigError(
            f"{where}: File() needs an UploadFile, bytes or a list of them, not {annotation!r}"
        )
    whole = is_model(annotation)
    if file_kind is None:
        check_msgspec_type(full, where)
    dependant.forms.append(FormSpec(name, key, full, default, marker, file_kind, whole))
