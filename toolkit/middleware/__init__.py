"""Pure-ASGI middleware: errors (outermost guard, request ids), timing, sessions, http functions."""

from .http import CallNext, HTTPFunctionMiddleware

__all__ = ["CallNext", "HTTPFunctionMiddleware"]
