"""Throttling of log in and sign up: the policy of apps/shop/throttle.py, as FastAPI dependencies.

A FastAPI app would usually take slowapi for this; this is a small equivalent (no extra
dependency) counting as ``toolkit.ratelimit`` counts, so both apps refuse the same attempts: per
client address before the body is validated, per account (the username, case-folded and hashed:
``apps.common.throttling``) once it is. ``POST /auth/token`` and ``POST /auth/login`` share
their counts. Over a limit: 429 ``{"detail": "Too Many Requests"}`` with ``Retry-After`` (no
``RateLimit-*`` headers).

Counters live in this process's memory (at most ``MAX_KEYS``, the least recently used go first):
unlike the toolkit app, several processes do not share them through Redis.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from apps.common.settings import Settings
from apps.common.throttling import account_key, address_key

from .schemas import LoginBody

__all__ = [
    "THROTTLED",
    "SlidingWindow",
    "Throttle",
    "limit_login_by_address",
    "limit_signup_by_address",
    "throttled_body",
    "throttled_form",
]

MAX_KEYS = 100_000
THROTTLED = {429: {"description": "Too many attempts: try again after `Retry-After` seconds"}}

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/minute"``, ``"100 per 5 minutes"`` -> ``(limit, window seconds)``."""
    match = _RATE.fullmatch(rate)
    if match is None or int(match[1]) < 1 or int(match[2] or 1) < 1:
        raise ValueError(f"cannot read the rate {rate!r}; write it like '10/minute' or '100 per 5 minutes'")
    return int(match[1]), int(match[2] or 1) * _UNITS[match[3].lower()]


class SlidingWindow:
    """``limit`` requests per ``window`` seconds per key, counted as ``toolkit.ratelimit`` counts:
    this window's admitted requests plus the previous window's, weighted by how much of it still
    overlaps (rounded down). A refused request does not count."""

    def __init__(self, rate: str) -> None:
        self.limit, self.window = parse_rate(rate)
        self._counts: OrderedDict[tuple[str, int], int] = OrderedDict()

    def _weighed(self, previous: int, left: float) -> int:
        return math.floor(previous * left / self.window) if previous else 0

    def hit(self, key: str) -> int | None:
        """Count one request for ``key`` if it fits: ``None``; else the whole seconds until one would."""
        now = time.time()
        window, counts = self.window, self._counts
        index = math.ceil(now / window) - 1  # windows are (start, end]
        previous = counts.get((key, index - 1), 0)
        current = counts.get((key, index), 0)
        if current + self._weighed(previous, (index + 1) * window - now) >= self.limit:
            return self._retry(now, index, current, previous)
        counts[(key, index)] = current + 1
        counts.move_to_end((key, index))
        while len(counts) > MAX_KEYS or next(iter(counts))[1] < index - 1:
            counts.popitem(last=False)  # the least recently counted first: old windows, then the rest
        return None

    def _admits(self, at: float, index: int, current: int, previous: int) -> bool:
        window = self.window
        later = math.ceil(at / window) - 1
        if later == index:
            count = current + self._weighed(previous, (index + 1) * window - at)
        elif later == index + 1:  # this window has become the previous one
            count = self._weighed(current, (later + 1) * window - at)
        else:
            count = 0
        return count < self.limit

    def _retry(self, now: float, index: int, current: int, previous: int) -> int:
        limit, window = self.limit, self.window
        if current < limit and previous:  # later in this window, as the previous one weighs less
            at = (index + 1) * window - (limit - current) * window / previous
        else:  # in the next window, as this one weighs less
            at = (index + 2) * window - limit * window / max(current, 1)
        retry = max(1, math.floor(at - now) + 1)
        while not self._admits(now + retry, index, current, previous):
            retry += 1
        while retry > 1 and self._admits(now + retry - 1, index, current, previous):
            retry -= 1
        return retry


class Throttle:
    """The app's limits (``app.state.throttle``)."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits
        self.login_address = SlidingWindow(settings.login_rate_per_address)
        self.login_account = SlidingWindow(settings.login_rate_per_account)
        self.signup_address = SlidingWindow(settings.signup_rate_per_address)

    def check(self, window: SlidingWindow, key: str) -> None:
        if not self.enabled:
            return
        retry_after = window.hit(key)
        if retry_after is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "Too Many Requests",
                headers={"Retry-After": str(retry_after)},
            )


def get_throttle(request: Request) -> Throttle:
    throttle: Throttle = request.app.state.throttle
    return throttle


ThrottleDep = Annotated[Throttle, Depends(get_throttle)]


def _address(request: Request) -> str:
    return address_key(request.client.host if request.client else "unknown")


async def limit_login_by_address(request: Request, throttle: ThrottleDep) -> None:
    throttle.check(throttle.login_address, _address(request))


async def limit_signup_by_address(request: Request, throttle: ThrottleDep) -> None:
    throttle.check(throttle.signup_address, _address(request))


async def throttled_form(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], throttle: ThrottleDep
) -> OAuth2PasswordRequestForm:
    """The validated form, once its account's attempt is counted."""
    throttle.check(throttle.login_account, account_key(form.username))
    return form


async def throttled_body(body: LoginBody, throttle: ThrottleDep) -> LoginBody:
    """The validated body, once its account's attempt is counted."""
    throttle.check(throttle.login_account, account_key(body.username))
    return body
