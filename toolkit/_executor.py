"""The one executor: run compiled steps, each a callable plus its argument extractors.

A ``Step`` is made once, when a plan is compiled: the callable, how to call it (``kind``), and
one extractor per argument, a function of the ``Resolution`` (the request's inputs and the
values of the steps run so far). ``run_steps`` is all there is at request time: for each step,
call its extractors, call it, keep its value. HTTP endpoints, websocket endpoints, app-scoped
dependencies and health checks all run through it; what differs is how they fill the
``Resolution`` and which steps they pass.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import anyio.to_thread

from ._cleanup import CleanupStack

__all__ = [
    "ASYNC",
    "ASYNC_GEN",
    "SYNC_GEN",
    "SYNC_INLINE",
    "SYNC_THREAD",
    "Extractor",
    "Resolution",
    "Step",
    "invoke",
    "run_steps",
    "step_kind",
]

# How a step is called.
ASYNC, SYNC_THREAD, SYNC_INLINE, ASYNC_GEN, SYNC_GEN = range(5)

#: Reads one argument from the resolution; an extractor named in ``Step.awaited`` returns an
#: awaitable (the session, loaded from its store).
Extractor = Callable[["Resolution"], Any]


class Resolution:
    """One run of a plan: what its steps read, and the values they produced so far."""

    __slots__ = (
        "background",
        "body",
        "connection",
        "early",
        "form",
        "params",
        "receive",
        "response",
        "scope",
        "send",
        "stack",
        "values",
    )
    params: Any
    body: Any
    form: dict[str, Any] | None
    connection: Any
    background: Any
    response: Any

    def __init__(self, scope: Any, receive: Any, send: Any, size: int, stack: CleanupStack | None) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.values: list[Any] = [None] * size
        self.stack = stack
        # Generator dependencies with ``scope="function"``: closed when the handler returns.
        self.early: CleanupStack | None = None
        # The validated path/query/header/cookie values (one Struct), the body, the form values,
        # the Request or WebSocket; the BackgroundTasks and injected Response, made on first use.
        self.params = self.body = self.form = self.connection = self.background = self.response = None

    async def run_sync(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run a sync step in a worker thread (health checks bound and abandon theirs)."""
        return await anyio.to_thread.run_sync(func, *args)


@dataclasses.dataclass(slots=True)
class Step:
    """One call: a dependency, or the handler (always last in a plan).

    The ``*_args`` fields say where each argument comes from (read by error reporting, the cache
    key and OpenAPI). Per request, ``run_steps`` reads the two sources nearly every step has as
    data: a field of the params Struct (``scalar_args``) and an earlier step's value
    (``dep_args``); every other argument through its extractor in ``args``. (An extractor call
    per argument measured 3% slower on the parameter and dependency benchmarks.)
    """

    call: Callable[..., Any]
    name: str
    kind: int
    index: int = 0  # where its value goes in ``Resolution.values``
    scalar_args: tuple[tuple[str, str], ...] = ()  # (kwarg, params-struct field)
    body_args: tuple[tuple[str, str | None], ...] = ()  # (kwarg, body-struct field or None: whole body)
    form_args: tuple[tuple[str, str], ...] = ()  # (kwarg, form-values key)
    special_args: tuple[tuple[str, str], ...] = ()  # (kwarg, injectable kind)
    dep_args: tuple[tuple[str, int], ...] = ()  # (kwarg, index of the step whose value it takes)
    scope: str = "request"
    args: tuple[tuple[str, Extractor], ...] = ()  # the arguments from any other source
    awaited: tuple[str, ...] = ()
    # The OAuth2 scopes the ``Security(...)`` markers on the way to this step ask for (OpenAPI's
    # security requirement; a ``SecurityScopes`` parameter receives them).
    security_scopes: tuple[str, ...] = ()


def step_kind(call_info: Any, sync_to_thread: bool = True) -> int:
    """The kind of a step calling ``call_info``'s callable (a ``Dependant``)."""
    if call_info.is_async_gen:
        return ASYNC_GEN
    if call_info.is_gen:
        return SYNC_GEN
    if call_info.is_coroutine:
        return ASYNC
    return SYNC_THREAD if sync_to_thread else SYNC_INLINE


async def run_steps(steps: Sequence[Step], res: Resolution) -> Any:
    """Run ``steps`` in order, keeping each value in ``res.values``; return the last one."""
    values = res.values
    value = None
    for step in steps:
        # PERF: a loop, not a comprehension (a function call of its own before Python 3.12).
        kwargs = {}
        if step.scalar_args:
            params = res.params
            for name, field in step.scalar_args:
                kwargs[name] = getattr(params, field)
        for name, extract in step.args:
            kwargs[name] = extract(res)
        for name in step.awaited:
            kwargs[name] = await kwargs[name]
        for name, index in step.dep_args:
            kwargs[name] = values[index]
        if step.kind == ASYNC:  # PERF: the common case without a call to invoke
            value = await step.call(**kwargs)
        else:
            value = await invoke(step, kwargs, res)
        values[step.index] = value
    return value


async def invoke(step: Step, kwargs: dict[str, Any], res: Resolution) -> Any:
    """Call a step of any kind: generators enter ``res.stack``, sync callables a worker thread."""
    kind = step.kind
    if kind == ASYNC:
        return await step.call(**kwargs)
    if kind == SYNC_INLINE:
        return step.call(**kwargs)
    # ``scope="function"`` where the caller keeps an early stack (HTTP endpoints); else the stack.
    stack = res.early if step.scope == "function" and res.early is not None else res.stack
    if kind == ASYNC_GEN:
        assert stack is not None
        return await stack.enter_async_gen(step.call(**kwargs))
    if kind == SYNC_GEN:
        assert stack is not None
        return await stack.enter_sync_gen(step.call(**kwargs))
    result = await res.run_sync(functools.partial(step.call, **kwargs))
    if inspect.isawaitable(result):  # a sync callable that returned a coroutine (e.g. a wrapper)
        result = await result
    return result
