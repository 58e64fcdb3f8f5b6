"""Pure-ASGI middleware: errors (outermost guard, request ids), timing, sessions."""
