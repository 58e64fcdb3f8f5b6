"""Flatten a ``Dependant`` tree into a per-endpoint extraction plan, and run it per request.

Compile time (``Plan.compile``): every path/query/header/cookie value of the whole dependency
graph becomes a field of ONE msgspec Struct; the body becomes one cached ``msgspec.json.Decoder``;
the dependency graph becomes a topologically ordered list of ``Step``s.

Request time (``Plan.extract``): gather raw strings into a dict, one ``msgspec.convert``, one
body decode; on failure, walk the input again to report every failing field.
"""

from __future__ import annotations

import functools
import operator
import types
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import unquote_plus

import msgspec
from starlette.datastructures import FormData

from ._analysis import (
    BodySpec,
    Dependant,
    FormSpec,
    ScalarSpec,
    analyze_dependency,
    refuse_foreign_markers,
)
from ._app_scope import AppScope
from ._body import request_cookies
from ._error_walk import collect_errors
from ._executor import ASYNC, ASYNC_GEN, SYNC_GEN, SYNC_INLINE, SYNC_THREAD, Extractor, Step, step_kind
from ._forms import FormPlan
from ._injectables import injectable_named
from ._json_body import JsonBody
from ._lax import is_bool, lenient_ints, normalize_bool, restore_bound
from ._param_models import ModelParam, lax_convert
from ._types import make_struct, undecodable_types
from ._validation import (
    ErrorEntry,
    entry_from_exception,
    missing_entry,
)
from .di import Depends
from .exceptions import RequestValidationError, RouteConfigError
from .params import UNSET


class Plan:
    """Everything an endpoint needs per request, computed once."""

    def __init__(
        self,
        root: Dependant,
        extra: list[Depends],
        owner: str,
        path_params: set[str],
        *,
        app_scope: AppScope | None = None,
        overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
        body_name: str = "Body",
        strict: bool = False,
    ) -> None:
        self.owner = owner
        # JSON bodies: lax by default, as FastAPI's (pydantic's) are: "50.5" for a float, seconds
        # for a timedelta; strict=True takes JSON's own types only.
        self.strict = strict
        self.app_scope = app_scope
        self.overridden = bool(overrides)
        self.body_name = body_name  # names the embedded-body Struct, hence its OpenAPI component
        self.steps: list[Step] = []
        self._scalars: list[tuple[ScalarSpec, str]] = []  # (spec, field name)
        self._scalar_index: dict[tuple[str, str], tuple[ScalarSpec, str]] = {}
        self._bodies: dict[str, tuple[BodySpec, str]] = {}
        self._forms: dict[str, FormSpec] = {}
        self._cache: dict[Any, int] = {}
        self.app_scoped: list[Dependant] = []  # as resolved (under this plan's overrides)
        self.dependency_keys: set[Any] = root.all_keys()
        for dep in extra:
            refuse_foreign_markers([dep], f"{owner}: dependencies=[...]")
            if not isinstance(dep, Depends):
                raise RouteConfigError(f"{owner}: dependencies=[...] takes Depends(...), not {dep!r}")
            if dep.dependency is None:
                raise RouteConfigError(f"{owner}: dependencies=[Depends()] needs a callable")
            dependant = analyze_dependency(
                dep.dependency, dict.fromkeys(path_params, str), overrides=overrides
            )
            self.dependency_keys |= {dependant.key, *dependant.all_keys()}
            self._add(None, dep, dependant)
        # A handler that yields streams its items: calling it makes the generator the response
        # sends (a generator dependency instead yields once, and its code after ``yield`` cleans up).
        self.streams = root.is_gen or root.is_async_gen
        self._add_dependant(root, "request", kind=SYNC_INLINE if self.streams else None)
        self._compile_scalars(path_params)
        self._compile_body()
        self._compile_forms()
        self.specials = {kind for step in self.steps for _, kind in step.special_args}
        self.has_generators = any(s.kind in (ASYNC_GEN, SYNC_GEN) for s in self.steps)
        # A step in a worker thread defers a cancellation until the next ``await``, which may be
        # the first cleanup's: those plans check for one before closing (a check costs ~1 µs).
        self.uses_threads = any(s.kind in (SYNC_THREAD, SYNC_GEN) for s in self.steps)
        # Generator dependencies whose cleanup runs when the handler returns (``scope="function"``).
        self.has_early_cleanup = any(
            s.kind in (ASYNC_GEN, SYNC_GEN) and s.scope == "function" for s in self.steps
        )
        self.step_inputs = [self._inputs_of(step) for step in self.steps]
        for step in self.steps:
            self._bind(step)
        # What the endpoint runs: the dependencies, then the handler (the cache wraps the latter).
        self.dependency_steps = tuple(self.steps[:-1])
        self.handler_steps = (self.steps[-1],)
        # Flags the endpoint reads per request.
        self.has_params = self.params_type is not None
        self.has_body = self.body_decoder is not None
        self.needs_request = bool(self.specials & {"request", "connection"}) or self.has_forms
        self.uses_stack = self.has_generators or self.has_forms
        self.reads_body = self.has_body or self.has_forms
        self.has_inputs = self.has_params or self.needs_request or self.reads_body
        # Nothing to clean up after the response: ``Endpoint._call_lean`` serves it.
        self.lean = not self.uses_stack and not self.has_early_cleanup
        # The handler alone, when it is async and takes nothing (a health check, a constant).
        handler = self.steps[-1]
        self.bare: Callable[[], Awaitable[Any]] | None = None
        if len(self.steps) == 1 and handler.kind == ASYNC and not self.has_inputs:
            self.bare = None if _takes_anything(handler) else handler.call
        self.size = len(self.steps)

    # --- graph -----------------------------------------------------------------------------

    def _add(
        self, kwarg: str | None, marker: Depends, dependant: Dependant, scopes: tuple[str, ...] = ()
    ) -> int:
        # ``scopes``: the OAuth2 scopes of the ``Security`` markers above (the step's own too).
        scopes = tuple(dict.fromkeys((*scopes, *marker.scopes)))
        # The same callable at app scope and at request scope is two values (as in FastAPI);
        # so is the same callable under other scopes (its ``SecurityScopes`` differ).
        key = (dependant.key, marker.scope, tuple(sorted(scopes)))
        if marker.use_cache and key in self._cache:
            return self._cache[key]
        if marker.scope == "app":
            index = self._add_app_scoped(dependant)
        else:
            index = self._add_dependant(
                dependant, marker.scope, sync_to_thread=marker.sync_to_thread, scopes=scopes
            )
        if marker.use_cache:
            self._cache[key] = index
        return index

    def _add_dependant(
        self,
        dependant: Dependant,
        scope: str,
        *,
        sync_to_thread: bool = True,
        kind: int | None = None,
        scopes: tuple[str, ...] = (),
    ) -> int:
        dep_args = []
        for kwarg, marker, sub in dependant.dependencies:
            if (
                marker.scope == "function"
                and scope == "request"
                and (sub.is_gen or sub.is_async_gen)
                and (dependant.is_gen or dependant.is_async_gen)
            ):
                # Its cleanup runs when the handler returns, before this one's: this one would
                # clean up with a value already closed (FastAPI refuses it too).
                if kind is not None:  # the handler itself yields: it streams after returning
                    raise RouteConfigError(
                        f"{dependant.name}: a handler that yields streams after it returns, so "
                        f"{sub.name} (scope='function') would be closed before the stream: use "
                        "the default scope='request'"
                    )
                raise RouteConfigError(
                    f"{dependant.name}: a generator dependency with scope='request' cannot depend on "
                    f"{sub.name}, a generator with scope='function' (closed before it)"
                )
            index = self._add(kwarg, marker, sub, scopes)
            if kwarg is not None:
                dep_args.append((kwarg, index))
        scalar_args = tuple(
            (spec.name, self._scalar_field(spec, dependant.name)) for spec in dependant.scalars
        )
        body_args = tuple((spec.name, self._body_field(spec, dependant.name)) for spec in dependant.bodies)
        form_args = tuple((spec.name, self._form_field(spec, dependant.name)) for spec in dependant.forms)
        self.steps.append(
            Step(
                dependant.call,
                dependant.name,
                step_kind(dependant, sync_to_thread) if kind is None else kind,
                len(self.steps),
                scalar_args,
                body_args,
                form_args,
                tuple(dependant.specials),
                tuple(dep_args),
                scope,
                security_scopes=scopes,
            )
        )
        return len(self.steps) - 1

    def _bind(self, step: Step) -> None:
        """Compile the arguments of ``step`` that are neither parameters nor earlier steps' values
        (those ``run_steps`` reads directly) into extractors."""
        args: list[tuple[str, Extractor]] = []
        for kwarg, body_field in step.body_args:
            embedded = self.body_embedded and body_field is not None
            args.append((kwarg, operator.attrgetter(f"body.{body_field}" if embedded else "body")))
        args += [(kwarg, _form_value(key)) for kwarg, key in step.form_args]
        awaited = []
        for kwarg, kind in step.special_args:
            injectable = injectable_named(kind)
            args.append((kwarg, injectable.extractor_for(step)))
            if injectable.awaited:
                awaited.append(kwarg)
        step.args = tuple(args)
        step.awaited = tuple(awaited)

    def _inputs_of(self, step: Step) -> tuple[tuple[str | int, ...], ...]:
        """The error ``loc`` prefixes that concern ``step``'s own arguments."""
        # A parameter model's errors are at its fields' keys: any of its source concerns it.
        by_field = {
            field: (spec.source,) if spec.model_fields else (spec.source, spec.key)
            for spec, field in self._scalars
        }
        inputs: list[tuple[str | int, ...]] = [by_field[field] for _, field in step.scalar_args]
        by_body = {field: spec.key for spec, field in self._bodies.values()}
        for _, field in step.body_args:
            inputs.append(("body", by_body[field]) if self.body_embedded and field else ("body",))
        inputs += [("body", key) for _, key in step.form_args]
        return tuple(inputs)

    def _add_app_scoped(self, dependant: Dependant) -> int:
        self.app_scoped.append(dependant)
        if self.app_scope is None:
            raise RouteConfigError(f"{dependant.name}: scope='app' needs an App")
        self.app_scope.register(dependant, replace=self.overridden)
        # The step just fetches the shared value: an async call with no arguments.
        fetch = functools.partial(self.app_scope.get, dependant.call)
        self.steps.append(Step(fetch, dependant.name, ASYNC, len(self.steps), scope="app"))
        return len(self.steps) - 1

    # --- scalars -----------------------------------------------------------------------------

    def _scalar_field(self, spec: ScalarSpec, owner: str) -> str:
        existing = self._scalar_index.get((spec.source, spec.key))
        if existing is not None:
            if existing[0].annotation != spec.annotation or existing[0].default != spec.default:
                raise RouteConfigError(
                    f"{owner}: {spec.source} parameter {spec.key!r} is declared again with another "
                    f"type or default ({spec.annotation!r} vs {existing[0].annotation!r})"
                )
            return existing[1]
        field = f"f{len(self._scalars)}"
        self._scalars.append((spec, field))
        self._scalar_index[(spec.source, spec.key)] = (spec, field)
        return field

    def _compile_scalars(self, path_params: set[str]) -> None:
        declared = {spec.key for spec, _ in self._scalars if spec.source == "path"}
        missing = path_params - declared
        if missing:
            raise RouteConfigError(
                f"{self.owner}: path parameter(s) {sorted(missing)} are not parameters of the handler "
                "or of its dependencies"
            )
        self.params_type = (
            make_struct("Params", [(field, spec.annotation, spec.default) for spec, field in self._scalars])
            if self._scalars
            else None
        )
        plain = [(s, f) for s, f in self._scalars if not s.model_fields]
        self.path_fields = tuple((s.key, f) for s, f in plain if s.source == "path")
        self.query_fields = {s.key: (f, s.is_sequence) for s, f in plain if s.source == "query"}
        self.header_fields = {
            s.key.encode("latin-1"): (f, s.is_sequence) for s, f in plain if s.source == "header"
        }
        self.cookie_fields = tuple((s.key, f) for s, f in plain if s.source == "cookie")
        # msgspec reads "true/false/1/0" as booleans; FastAPI users also send yes/no/on/off.
        self.bool_fields = tuple(f for s, f in plain if is_bool(s.annotation))
        self.model_params = tuple(
            ModelParam(spec, field, {s.key for s, _ in plain if s.source == spec.source})
            for spec, field in self._scalars
            if spec.model_fields
        )

    # --- body --------------------------------------------------------------------------------

    def _body_field(self, spec: BodySpec, owner: str) -> str | None:
        existing = self._bodies.get(spec.key)
        if existing is not None:
            if existing[0].annotation != spec.annotation:
                raise RouteConfigError(
                    f"{owner}: body field {spec.key!r} is declared twice with different types"
                )
            return existing[1]
        field = f"b{len(self._bodies)}"
        self._bodies[spec.key] = (spec, field)
        return field

    def _compile_body(self) -> None:
        self.body_type: Any = None
        self.body_required = False
        self.body_embedded = False
        self.body_specs: list[tuple[BodySpec, str]] = []
        self.json_body: JsonBody | None = None
        if not self._bodies:
            self.body_decoder = None
            return
        if self._forms:
            raise RouteConfigError(f"{self.owner}: a route cannot read both a JSON body and form fields")
        self.body_specs = specs = list(self._bodies.values())
        if len(specs) == 1 and not specs[0][0].embed:
            spec = specs[0][0]
            self.body_type = spec.annotation
            self.body_required = spec.default is UNSET
        else:
            self.body_embedded = True
            self.body_type = make_struct(
                self.body_name,
                [(field, spec.annotation, spec.default) for spec, field in specs],
                rename={field: spec.key for spec, field in specs},
            )
            self.body_required = any(spec.default is UNSET for spec, _ in specs)
        custom = undecodable_types(self.body_type)
        if custom:
            raise RouteConfigError(
                f"{self.owner}: the request body holds {', '.join(custom)}, which msgspec cannot decode "
                "from JSON: make it a msgspec.Struct (or a dataclass / TypedDict)"
            )
        self.json_body = JsonBody(self.body_type, specs, embedded=self.body_embedded, strict=self.strict)
        self.body_decoder = self.json_body.decoder
        self.decode_body = self.json_body.decode  # PERF: the bound method, no hop per request

    # --- forms -------------------------------------------------------------------------------

    def _form_field(self, spec: FormSpec, owner: str) -> str:
        if spec.key in self._forms and self._forms[spec.key].annotation != spec.annotation:
            raise RouteConfigError(f"{owner}: form field {spec.key!r} is declared twice with different types")
        self._forms[spec.key] = spec
        return spec.key

    def _compile_forms(self) -> None:
        self.has_forms = bool(self._forms)
        self.form_plan = FormPlan(self._forms, self.owner) if self.has_forms else None

    async def extract_form(self, form: FormData) -> dict[str, Any]:
        assert self.form_plan is not None
        return await self.form_plan.extract(form)

    # --- scalars at request time ---------------------------------------------------------------

    def extract_params(self, scope: MutableMapping[str, Any], path_params: dict[str, Any]) -> Any:
        """Gather path/query/header/cookie strings and convert them in one msgspec call."""
        raw: dict[str, Any] = {}
        for key, field in self.path_fields:
            raw[field] = path_params[key]
        if self.query_fields:
            query_string = scope["query_string"]
            if query_string:
                wanted = self.query_fields
                # PERF: parse_qsl unquotes every pair; we split by hand and unquote only wanted
                # pairs that need it (same semantics: "&" separates, "+" is a space, UTF-8).
                for pair in query_string.decode("latin-1").split("&"):
                    key, _, value = pair.partition("=")
                    if "%" in key or "+" in key:
                        key = unquote_plus(key)
                    hit = wanted.get(key)
                    if hit is not None:
                        if "%" in value or "+" in value:
                            value = unquote_plus(value)
                        if hit[1]:
                            raw.setdefault(hit[0], []).append(value)
                        else:
                            raw[hit[0]] = value  # last one wins, as in Starlette/FastAPI
        if self.header_fields:
            wanted_h = self.header_fields
            for name, value in scope["headers"]:
                hit = wanted_h.get(name)
                if hit is not None:
                    text = value.decode("latin-1")
                    if hit[1]:
                        raw.setdefault(hit[0], []).append(text)
                    elif hit[0] not in raw:  # the first line, as Request.headers (and a scheme) reads
                        raw[hit[0]] = text
        if self.cookie_fields:
            cookies = request_cookies(scope)  # every Cookie line, as Request.cookies reads them
            for key, field in self.cookie_fields:
                if key in cookies:
                    raw[field] = cookies[key]
        for model in self.model_params:
            raw[model.field] = model.gather(scope)
        try:
            for field in self.bool_fields:
                if field in raw:
                    raw[field] = normalize_bool(raw[field])
            return msgspec.convert(raw, self.params_type, strict=False)
        except msgspec.ValidationError:
            errors, valid = self._scalar_errors(raw)
            if not errors:  # only lenient spellings (``01``, ``+1``) failed the fast path
                return msgspec.convert(valid, self.params_type)
            exc = RequestValidationError(errors)
            exc.valid_params = types.SimpleNamespace(**valid)
            raise exc from None

    # --- read-only views (OpenAPI, the cache key) ------------------------------------------

    def scalar_specs(self) -> list[ScalarSpec]:
        """The path, query, header and cookie parameters of every step, each once (a parameter
        model's fields one by one)."""
        return [field for spec, _ in self._scalars for field in (spec.model_fields or (spec,))]

    def form_specs(self) -> list[FormSpec]:
        """The form fields of every step, each once."""
        return list(self._forms.values())

    @property
    def validates(self) -> bool:
        """Whether a request can fail validation (a 422) on this route."""
        return bool(self._scalars) or self.has_body or self.has_forms

    def path_specs(self) -> list[ScalarSpec]:
        return [spec for spec, _ in self._scalars if spec.source == "path"]

    def _scalar_errors(self, raw: dict[str, Any]) -> tuple[list[ErrorEntry], dict[str, Any]]:
        """Every failing field, and the converted values of the fields that are fine."""
        errors: list[ErrorEntry] = []
        valid: dict[str, Any] = {}
        for spec, field in self._scalars:
            loc = (spec.source, spec.key)
            if spec.model_fields:
                try:
                    valid[field] = msgspec.convert(raw[field], spec.annotation, strict=False)
                except msgspec.ValidationError:
                    errors += collect_errors(raw[field], spec.annotation, (spec.source,), lax_convert)
                continue
            if field not in raw:
                if spec.default is UNSET:
                    errors.append(missing_entry(loc))
                else:
                    valid[field] = spec.default
                continue
            try:
                valid[field] = msgspec.convert(raw[field], spec.annotation, strict=False)
            except msgspec.ValidationError as exc:
                lenient = lenient_ints(raw[field], spec.annotation)
                if lenient is not None:
                    valid[field] = lenient
                else:
                    errors.append(restore_bound(entry_from_exception(exc, loc, raw[field]), spec))
        return errors, valid

    def steps_to_run_despite(
        self, errors: list[ErrorEntry], *, body_read: bool = True, form_read: bool = True
    ) -> list[Step]:
        """Dependencies that can still run when ``errors`` failed validation (FastAPI's order).

        A dependency whose own inputs (and dependencies) are valid runs before the 422 is sent,
        so an auth dependency's 401 wins over a validation error of the handler's body. The body
        and the form are decoded whole: when one failed (``body_read``/``form_read`` false), no
        step reading any part of it runs, whatever the errors' locations say.
        """
        failed = [tuple(error["loc"]) for error in errors]
        runnable: set[int] = set()
        for index, step in enumerate(self.steps[:-1]):
            if (step.body_args and not body_read) or (step.form_args and not form_read):
                continue
            inputs = self.step_inputs[index]
            tainted = any(loc[: len(i)] == i or i[: len(loc)] == loc for loc in failed for i in inputs)
            if not tainted and all(dep in runnable for _, dep in step.dep_args):
                runnable.add(index)
        return [step for step in self.steps if step.index in runnable]


def _takes_anything(step: Step) -> bool:
    return bool(
        step.scalar_args
        or step.body_args
        or step.form_args
        or step.special_args
        or step.dep_args
        or step.args
        or step.awaited
    )


def _form_value(key: str) -> Extractor:
    def extract(res: Any) -> Any:
        return res.form[key]

    return extract
