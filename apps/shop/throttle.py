"""Throttling of the password endpoints (log in, sign up), on ``toolkit.ratelimit``.

Each attempt costs a password hash (scrypt, ~0.1-0.4 s of a core), so each is counted before
any hashing: per client address before the body is even validated, and, for logins, per account
(the username sent) once it is. Over a limit the answer is 429 with ``Retry-After``.

- ``POST /auth/token`` and ``POST /auth/login`` share their counts (``name=``): one budget of
  guesses per address, and one per account whichever address the guesses come from.
- The account key is the username case-folded and hashed, the address key an IPv6 client's /64
  (``apps.common.throttling``, shared with the FastAPI twin).
- Counters live in Redis when ``REDIS_URL`` is set (shared by every process), else in this
  process, in a store of their own (never the session store: a flood of usernames must not evict
  sessions).

The per-account limit also lets anyone hold an account's logins back for a window by guessing
wrong; it is short (a minute by default) and the price of bounding guesses per account.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from apps.common.settings import Settings
from apps.common.throttling import account_key, address_key
from toolkit import Depends, Request, Response
from toolkit.ratelimit import RateLimiter
from toolkit.sessions import CounterStore, MemoryStore, RedisStore

from .deps import SettingsDep

__all__ = [
    "THROTTLED",
    "Throttle",
    "ThrottleDep",
    "limit_login_by_address",
    "limit_signup_by_address",
    "open_throttle",
]

#: For ``responses=``: what a throttled request gets.
THROTTLED = {429: {"description": "Too many attempts: try again after `Retry-After` seconds"}}

_ACCOUNT = "apps.shop.throttle.account"  # the request's account key, read by the account limit


class Throttle:
    """The app's limits, over one counter store."""

    def __init__(self, settings: Settings, store: CounterStore) -> None:
        self.enabled = settings.rate_limits
        limiter = RateLimiter(store, prefix="shop")
        self.limiter = limiter
        self.store = store
        self.login_address = limiter.limit(settings.login_rate_per_address, key=self.address, name="login-ip")
        self.login_account = limiter.limit(
            settings.login_rate_per_account, key=_account, name="login-account"
        )
        self.signup_address = limiter.limit(
            settings.signup_rate_per_address, key=self.address, name="signup-ip"
        )

    def address(self, request: Request) -> str:
        return address_key(self.limiter.client_address(request))

    async def check_login_account(self, request: Request, username: str) -> None:
        """Count a login attempt on ``username``'s account; 429 when over the limit."""
        if not self.enabled:
            return
        request.scope[_ACCOUNT] = account_key(username)
        # A response of its own: the route's RateLimit-* headers are the per-address ones.
        await self.login_account(request, Response())


def _account(request: Request) -> str:
    key: str = request.scope[_ACCOUNT]
    return key


async def open_throttle(settings: SettingsDep) -> AsyncIterator[Throttle]:
    """Made at start-up (app scope); a Redis store is closed at shutdown, on the loop that used it."""
    store: CounterStore
    if settings.redis_url:
        store = RedisStore(url=settings.redis_url, prefix="shop:ratelimit:")
    else:
        store = MemoryStore()
    try:
        yield Throttle(settings, store)
    finally:
        if isinstance(store, RedisStore):
            await store.close()


ThrottleDep = Annotated[Throttle, Depends(open_throttle, scope="app")]


async def limit_login_by_address(request: Request, response: Response, throttle: ThrottleDep) -> None:
    """Before the body is validated: one count per login attempt from this address."""
    if throttle.enabled:
        await throttle.login_address(request, response)


async def limit_signup_by_address(request: Request, response: Response, throttle: ThrottleDep) -> None:
    """Before the body is validated: one count per sign-up from this address."""
    if throttle.enabled:
        await throttle.signup_address(request, response)
