"""Pure-ASGI middleware: errors (outermost guard, request ids), timing, sessions, http functions,
head limit."""

from .headers import HeaderLimitMiddleware
from .http import CallNext, HTTPFunctionMiddleware

__all__ = ["CallNext", "HTTPFunctionMiddleware", "HeaderLimitMiddleware"]
