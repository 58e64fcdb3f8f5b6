"""``Limits``: what a client may send to ``toolkit run``'s server, and how slowly."""

from __future__ import annotations

import dataclasses
import functools
import json
import math

__all__ = ["LIMITS_ENV", "Limits"]

#: The environment variable through which ``toolkit run`` hands ``Limits`` to every worker process.
LIMITS_ENV = "TOOLKIT_SERVE_LIMITS"


@dataclasses.dataclass(frozen=True)
class Limits:
    """See ``toolkit.serve._protocol`` for what each one does."""

    header_size: int = 32 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    min_body_rate: int = 256
    send_timeout: float = 60.0

    def __post_init__(self) -> None:
        for name in ("header_size", "min_body_rate"):
            if type(getattr(self, name)) is not int:
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        if self.header_size < 1024:
            raise ValueError(f"header_size must be at least 1024 bytes, got {self.header_size}")
        for name in ("header_timeout", "body_timeout", "send_timeout"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.min_body_rate < 0:
            raise ValueError(f"min_body_rate must be >= 0 bytes/s, got {self.min_body_rate}")

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    @functools.lru_cache(maxsize=4)
    def from_env(text: str | None) -> Limits:
        """The limits ``to_env`` wrote (the defaults when there are none); a bad value is a
        ``ValueError`` naming the variable."""
        if not text:
            return Limits()
        try:
            fields = json.loads(text)
            if not isinstance(fields, dict):
                raise TypeError("not a JSON object")
            return Limits(**fields)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{LIMITS_ENV}={text!r} is not valid: {exc}") from None
