"""A Redis store on ``redis.asyncio`` (``pip install 'toolkit[redis]'``)."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Any

import anyio

from ..stores import StoreError

__all__ = ["RedisStore"]


_INCR_SCRIPT = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"""

# Connection settings a pool adds for itself, tied to that pool: another pool makes its own.
_POOL_OWN_KWARGS = (
    "maint_notifications_pool_handler",
    "oss_cluster_maint_notifications_handler",
    "event_dispatcher",
)


class _LoopPool:
    """The connection pool one event loop uses, closed with that loop.

    redis.asyncio connections are streams of the loop that opened them, and a pool's lock (and a
    blocking pool's condition) binds to the first loop that waits on it: a pool serves one loop.
    """

    __slots__ = (
        "_forget",
        "_lifetime",
        "_shut_timeout",
        "_suppress",
        "abandoned",
        "closed",
        "loop",
        "owned",
        "pool",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: Any,
        *,
        owned: bool,
        forget: Callable[[_LoopPool], None],
        timeout: float,
        suppress: tuple[type[BaseException], ...],
    ) -> None:
        self.loop = loop
        self.pool = pool
        self.owned = owned  # made by the store (closed with it); else the client's own (disconnected only)
        self.closed = False  # a command that finds it closed disconnects its connection after use
        self.abandoned = False
        self._forget = forget
        self._shut_timeout = timeout
        self._suppress = suppress
        self._lifetime: AsyncGenerator[None, None] | None = None

    async def start(self) -> None:
        """Have the loop close the pool at its end, while it still runs.

        A suspended async generator is what an event loop closes at its end, before it closes
        itself: ``asyncio.run``, ``asyncio.Runner`` and ``anyio.run`` (so every ``TestClient``)
        call ``loop.shutdown_asyncgens()``, which runs the generator's ``finally`` on that loop.
        """
        lifetime = self._live()
        try:
            await lifetime.asend(None)  # the loop's first-iteration hook registers it
        except Warning:  # the loop's shutdown has begun (ResourceWarning made an error): not registered
            return
        self._lifetime = lifetime

    async def _live(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if not self.abandoned:
                await self._shut()

    async def close(self) -> None:
        lifetime, self._lifetime = self._lifetime, None
        if lifetime is not None:
            await lifetime.aclose()  # runs _shut() in its finally
        elif not self.closed:
            await self._shut()

    async def _shut(self) -> None:
        self.closed = True
        self._forget(self)
        with anyio.CancelScope(shield=True), anyio.move_on_after(self._shut_timeout):
            try:
                if self.owned:
                    await self.pool.aclose()
                else:
                    await self.pool.disconnect()  # in use as well: each closes before it is released
            except self._suppress:  # best effort: each socket was closed before the close was awaited
                pass

    def abandon(self) -> None:
        """The loop was closed without closing its async generators: nothing can run on it now.

        Its sockets cannot be closed through the closed loop; the pool lets go of them and the
        garbage collector closes them (asyncio warns of each unclosed transport, as it should).
        """
        self.closed = self.abandoned = True
        lifetime, self._lifetime = self._lifetime, None
        if lifetime is not None:  # finish it here: its finalizer would call the closed loop
            closing = lifetime.aclose()
            try:
                closing.send(None)  # its finally does not await once abandoned
            except StopIteration:
                pass
            else:  # pragma: no cover - the finally never suspends
                closing.close()
        self.pool.reset()


class RedisStore:
    """Keys live under ``prefix``; value and TTL are written by one ``SET ... PX``.

    Every command runs under ``timeout`` seconds; a slow, refused or failed command raises
    ``StoreError`` (never a silent miss). Pass a ``redis.asyncio.Redis`` client, or a ``url``.

    One store serves any number of event loops (a module-level store used by one ``TestClient``
    after another, ``asyncio.run`` after ``asyncio.run``, threads with loops of their own): each
    loop has a connection pool of its own, made on its first command. The client's pool serves
    the first loop that uses the store; every other loop gets a pool with the same connection
    settings (class, ``max_connections``, a blocking pool's ``timeout``, every connection option).
    A loop's pool is closed by ``aclose()`` on that loop, or else when the loop ends.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        url: str | None = None,
        prefix: str = "toolkit:session:",
        timeout: float = 1.0,
    ) -> None:
        if client is None:
            if url is None:
                raise ValueError("RedisStore needs a redis.asyncio client or a url")
            try:
                import redis.asyncio as redis_asyncio
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError("RedisStore needs the redis package: pip install 'toolkit[redis]'") from exc
            client = redis_asyncio.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        pool = getattr(client, "connection_pool", None)
        if pool is None:  # e.g. RedisCluster: commands are routed per key, not through one pool
            raise TypeError(f"RedisStore needs a redis.asyncio.Redis client, not {type(client).__name__}")
        if getattr(pool, "connection_kwargs", {}).get("decode_responses"):
            raise ValueError(
                "RedisStore stores bytes (msgpack, signed data): pass a client with decode_responses=False"
            )
        import redis.exceptions

        self.client = client
        self.prefix = prefix
        self.timeout = timeout
        self._failures = (redis.exceptions.RedisError, OSError)  # looked up once, not per command
        self._given_pool = pool
        self._home: weakref.ref[asyncio.AbstractEventLoop] | None = None  # the loop the given pool serves
        self._pool_kwargs = {k: v for k, v in pool.connection_kwargs.items() if k not in _POOL_OWN_KWARGS}
        # A plain dict, pruned by hand: a WeakKeyDictionary would never drop a loop whose pool
        # holds connections (their transports refer to the loop).
        self._pools: dict[asyncio.AbstractEventLoop, _LoopPool] = {}
        self._lock = threading.Lock()  # loops in other threads use the store too

    # --- one pool per event loop ------------------------------------------------------------

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _LoopPool:
        with self._lock:
            entry = self._pools.get(loop)
            if entry is not None:
                return entry
            stale = self._take_stale()
            pool, owned = self._pool_for(loop)
            entry = _LoopPool(
                loop, pool, owned=owned, forget=self._forget, timeout=self.timeout, suppress=self._failures
            )
            self._pools[loop] = entry
        for old in stale:
            old.abandon()
        await entry.start()  # never suspends: no other command of this loop runs in between
        return entry

    def _pool_for(self, loop: asyncio.AbstractEventLoop) -> tuple[Any, bool]:
        """The pool for ``loop``, and whether the store made it."""
        if self._home is None:
            self._home = weakref.ref(loop)
        if self._home() is loop:
            return self._given_pool, False
        import redis.asyncio as redis_asyncio

        given = self._given_pool
        kwargs = dict(self._pool_kwargs)
        if type(given) is redis_asyncio.BlockingConnectionPool:
            kwargs["timeout"] = given.timeout
        elif type(given) is not redis_asyncio.ConnectionPool:  # e.g. a Sentinel pool: loop-bound state
            raise StoreError(
                f"RedisStore cannot open a {type(given).__name__} for a second event loop (it serves"
                " the loop that first used the store): give it a client with a ConnectionPool"
                " or a BlockingConnectionPool"
            )
        return type(given)(
            connection_class=given.connection_class, max_connections=given.max_connections, **kwargs
        ), True

    def _take_stale(self) -> list[_LoopPool]:
        """Remove the pools of loops closed without closing them (call with ``_lock`` held)."""
        stale = [entry for loop, entry in self._pools.items() if loop.is_closed()]
        for entry in stale:
            del self._pools[entry.loop]
        return stale

    def _forget(self, entry: _LoopPool) -> None:
        with self._lock:
            if self._pools.get(entry.loop) is entry:
                del self._pools[entry.loop]

    async def aclose(self) -> None:
        """Close the connections of the running loop's pool (an app's shutdown calls it).

        Safe to call when the store was never used, twice, or on a loop that never used it; the
        store stays usable (a later command opens a new pool). Pools of other loops that are still
        running are theirs to close (each closes when its loop ends); those of loops closed
        without it are let go of here.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._pools.pop(loop, None)
            stale = self._take_stale()
        for old in stale:
            old.abandon()
        if entry is not None:
            await entry.close()

    # --- commands ------------------------------------------------------------------------------

    async def _run(self, *command: Any) -> Any:
        """Send one command and read its reply on a connection held for just that command.

        A connection whose reply was not read (a timeout, the request cancelled mid-command, a
        broken socket) is closed before it goes back to the pool: the late reply would otherwise
        be read by the next command on it, so one user's session would answer another's request.
        We hold this guarantee ourselves rather than rely on how a redis-py release cleans up.
        A connection of a pool closed meanwhile (``aclose()``) is closed as well.
        """
        loop = asyncio.get_running_loop()
        entry = self._pools.get(loop)
        if entry is None:
            entry = await self._open(loop)
        pool = entry.pool
        connection = None
        answered = False
        try:
            with anyio.fail_after(self.timeout):
                connection = await pool.get_connection()
                await connection.send_command(*command)
                reply = await connection.read_response()
                answered = True
        except TimeoutError as exc:
            raise StoreError(f"redis {command[0]} timed out after {self.timeout}s") from exc
        except self._failures as exc:
            raise StoreError(f"redis {command[0]} failed: {exc}") from exc
        except Exception as exc:
            if entry.closed:
                # ``aclose()`` disconnected the pool under this command; older redis-py releases
                # then fail inside the connection (an AttributeError on a dropped writer).
                raise StoreError(f"redis {command[0]} failed: the store was closed meanwhile") from exc
            raise
        finally:
            if connection is not None:
                with anyio.CancelScope(shield=True):
                    if not answered or entry.closed:
                        await connection.disconnect(nowait=True)
                    await pool.release(connection)
        return reply

    async def get(self, key: str) -> bytes | None:
        value = await self._run("GET", self.prefix + key)
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        command = ["SET", self.prefix + key, value, "PX", max(1, int(ttl * 1000))]
        if only_if_exists:
            command.append("XX")
        return await self._run(*command) is not None  # "OK", or nil when XX found no key

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        # INCRBY and the expiry of a new counter in one server-side step.
        result = await self._run("EVAL", _INCR_SCRIPT, 1, self.prefix + key, amount, max(1, int(ttl * 1000)))
        return int(result)

    async def delete(self, key: str) -> None:
        await self._run("DEL", self.prefix + key)

    async def ping(self) -> bool:
        return bool(await self._run("PING"))

    async def close(self) -> None:
        """``aclose()``, then close ``client`` too, on the loop its pool serves (or if it served none)."""
        await self.aclose()
        home = self._home
        if home is None or home() is asyncio.get_running_loop():
            await self.client.aclose()
