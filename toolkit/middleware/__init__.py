"""Pure-ASGI middleware: errors (outermost guard, request ids), timing, sessions, http functions,
head limit, profiling (pyinstrument, imported only when a ``ProfilingMiddleware`` is made)."""

from .headers import HeaderLimitMiddleware
from .http import CallNext, HTTPFunctionMiddleware
from .profiling import ProfilingMiddleware

__all__ = ["CallNext", "HTTPFunctionMiddleware", "HeaderLimitMiddleware", "ProfilingMiddleware"]
