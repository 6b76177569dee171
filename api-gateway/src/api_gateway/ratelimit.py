"""Rate limits in Redis: GCRA per route class and subject, and login throttling.

GCRA (the generic cell rate algorithm) keeps one number per subject, the *theoretical arrival
time*, updated atomically in a Lua script with Redis's own clock: a burst of ``limit`` requests,
then one every ``period / limit`` seconds. Login throttling counts *failed* logins per account
and per client address in fixed windows.

When Redis cannot be reached, each route class follows its policy: fail open (let the request
through without headers) or fail closed (503). Logins always fail closed.

A busy subject is served from a *lease*: one script call takes up to ``max_lease`` requests'
worth at once (never more than 2% of its limit), and this gateway spends them over the next
``lease_seconds`` without asking Redis again. Redis still counts every admitted request, so all
gateway instances together never admit more than the limit: the lease is counted as if every
request in it came at the *end* of its lifetime (the bucket's time is moved to ``now +
lease_seconds`` first), which is never earlier than when any of them is actually used, and a
leased request is never used after that. What a lease did not use goes back to Redis with the
subject's next call. The price is some strictness: a subject coming back from idle gives up
``lease_seconds`` of credit when its first lease is taken, and while an instance holds unused
leased requests, the other instances see that many fewer remaining. A subject starts with
single requests (as without leases, exactly); its leases double while they run out within
their lifetime and halve when they expire unused.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from algotrade.errors import DependencyUnavailable
from algotrade.redis_script import PipelinedScript
from api_gateway.config import RateLimitRule, RouteClass
from api_gateway.errors import RateLimitExceeded
from api_gateway.metrics import GatewayMetrics

logger = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV[1] limit; ARGV[2] period (s); ARGV[3] how many requests to take (more
# than one: a lease); ARGV[4] the lease's lifetime (s); ARGV[5] unused leased requests given back.
# Returns {taken, remaining, retry_after, reset_after} (seconds as strings: Lua numbers would be
# truncated to integers on return); with 0 taken, the request is refused.
# Times are relative to an epoch in 2023 so that 14-digit tostring() keeps microseconds.
GCRA_SCRIPT = """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local lifetime = tonumber(ARGV[4])
local emission = period / limit
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
local stored = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[5]) * emission
local function keep(tat)
  if tat > now then
    redis.call('SET', KEYS[1], tostring(tat), 'PX', math.max(1, math.ceil((tat - now) * 1000)))
  else
    redis.call('DEL', KEYS[1])
  end
end
if want > 1 then
  -- Counted as if all came at the end of the lease's lifetime: never earlier than they will.
  local tat = math.max(stored, now + lifetime)
  local available = math.floor((now + period - tat) / emission + 0.000001)
  if available >= 2 then
    local taken = math.min(want, available)
    local new_tat = tat + taken * emission
    keep(new_tat)
    return {taken, available - taken, '0', tostring(new_tat - now)}
  end
end
-- One request, exactly (also when a lease would not leave room for two).
local tat = math.max(stored, now)
local new_tat = tat + emission
local allow_at = new_tat - period
if now < allow_at then
  if tonumber(ARGV[5]) > 0 then keep(stored) end
  return {0, 0, tostring(allow_at - now), tostring(tat - now)}
end
local remaining = math.floor((now - allow_at) / emission + 0.000001)
keep(new_tat)
return {1, remaining, '0', tostring(new_tat - now)}
"""

# KEYS: counters; ARGV[1] window (s). Returns {count, ttl_ms} per key.
COUNTERS_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  local ttl = redis.call('PTTL', key)
  out[#out + 1] = count
  out[#out + 1] = ttl
end
return out
"""

# KEYS: counters to increment; ARGV[1] window (s). The window starts at the first failure.
RECORD_FAILURE_SCRIPT = """
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    redis.call('EXPIRE', key, tonumber(ARGV[1]))
  end
end
return 1
"""


@dataclass(slots=True)  # not frozen: made for every request, and frozen fields cost more to set
class Decision:
    """The outcome of one rate-limit check, and its ``X-RateLimit-*`` headers."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    reset_after: float
    enforced: bool = True  # False: Redis was unreachable and the class fails open

    def headers(self) -> dict[str, str]:
        if not self.enforced:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(max(0, int(self.reset_after + 0.999))),
        }

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """`headers` as an ASGI header list (built directly: it goes on every answer)."""
        if not self.enforced:
            return []
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % max(0, int(self.reset_after + 0.999))),
        ]


class RedisHealth:
    """Remembers a Redis failure for ``retry_seconds``, so an outage costs one timeout per
    interval instead of one per request."""

    def __init__(self, retry_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_until = 0.0
        self.last_error: str | None = None

    def usable(self) -> bool:
        return self._clock() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        if self.usable():
            logger.warning("redis unreachable for rate limiting: %s", exc)
        self._down_until = self._clock() + self._retry_seconds
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]

    def succeeded(self) -> None:
        self._down_until = 0.0
        self.last_error = None


_REDIS_ERRORS = (RedisError, OSError, TimeoutError)
LEASE_SHARE = 50  # a lease holds at most 1/50 (2%) of its subject's limit
_LEASES_MAX = 10_000


class _Lease:
    """One subject's requests taken from Redis ahead of use, and how many to take next."""

    __slots__ = ("asking", "expires_at", "size", "tat", "tokens")

    def __init__(self) -> None:
        self.tokens = 0  # taken, not used yet
        self.tat = 0.0  # the bucket's time once every taken request is used (local clock)
        self.expires_at = 0.0  # no taken request is used from then on (local clock)
        self.size = 1  # how many requests the next script call asks for
        self.asking = False  # a call for more than one is under way


class RateLimiter:
    """GCRA limits per route class and subject (a user, an API key or a client address).

    With ``lease_seconds`` > 0, busy subjects are served from leases (see the module's
    docstring); ``clock`` is the local clock their lifetimes are measured with.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        rules: dict[RouteClass, RateLimitRule],
        health: RedisHealth,
        metrics: GatewayMetrics | None = None,
        lease_seconds: float = 0.0,
        max_lease: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._metrics = metrics
        self._prefix = f"{prefix}gateway:rl:"
        self._rules = rules
        self._health = health
        self._lease_seconds = lease_seconds
        self._max_lease = {
            route_class: min(max_lease, rule.limit // LEASE_SHARE) if lease_seconds > 0 else 1
            for route_class, rule in rules.items()
        }
        self._leases: dict[str, _Lease] = {}
        self._clock = clock
        # Pipelined on one connection where the client is plain TCP; redis-py's otherwise.
        self._script = PipelinedScript.for_client(
            redis, GCRA_SCRIPT, timeout=1.0
        ) or redis.register_script(GCRA_SCRIPT)

    async def aclose(self) -> None:
        if isinstance(self._script, PipelinedScript):
            await self._script.aclose()

    def rule(self, route_class: RouteClass) -> RateLimitRule:
        return self._rules[route_class]

    async def check(self, route_class: RouteClass, subject: str) -> Decision:
        """Count one request; raise 429 (or 503 for a fail-closed class without Redis)."""
        decision = await self.hit(route_class, subject)
        if not decision.allowed:
            if self._metrics is not None:
                self._metrics.rate_limited.labels(route_class).inc()
            raise RateLimitExceeded(
                f"rate limit for {route_class} requests exceeded; retry later",
                retry_after=decision.retry_after,
                limit_headers=decision.headers(),
            )
        return decision

    async def hit(self, route_class: RouteClass, subject: str) -> Decision:
        rule = self._rules[route_class]
        key = f"{self._prefix}{route_class}:{subject}"
        want, give_back = 1, 0
        lease = self._lease(key, route_class)
        if lease is not None:
            now = self._clock()
            if now < lease.expires_at:
                if lease.tokens:
                    lease.tokens -= 1
                    return _leased_decision(rule, lease, now)
                lease.size = min(lease.size * 2, self._max_lease[route_class])  # ran out
            elif lease.tokens:
                give_back, lease.tokens = lease.tokens, 0
                lease.size = max(1, lease.size // 2)  # outlived its use
            # One lease under way at a time: requests arriving meanwhile take one each, so that
            # a crowd of them never holds more than one lease's worth.
            if not lease.asking:
                want = lease.size
        if self._health.usable():
            sent_at = self._clock()
            asking = lease if lease is not None and want > 1 else None
            if asking is not None:
                asking.asking = True
            try:
                taken, remaining, retry_after, reset_after = await self._script(
                    keys=[key],
                    args=[rule.limit, rule.period_seconds, want, self._lease_seconds, give_back],
                )
            except _REDIS_ERRORS as exc:
                self._health.failed(exc)  # a lease given back is lost: fewer admitted, not more
            else:
                if self._health.last_error is not None:
                    self._health.succeeded()
                taken, reset_after = int(taken), float(reset_after)
                if taken and lease is not None:
                    self._keep(lease, taken - 1, sent_at, reset_after)
                # The first request taken is this one: the rest are still to come.
                later = max(0, taken - 1)
                return Decision(
                    allowed=taken > 0,
                    limit=rule.limit,
                    remaining=int(remaining) + later,
                    retry_after=float(retry_after),
                    reset_after=reset_after - later * rule.period_seconds / rule.limit,
                )
            finally:
                if asking is not None:
                    asking.asking = False
        if not rule.fail_open:
            raise DependencyUnavailable(
                f"rate limiting is unavailable, so {route_class} requests are refused "
                "until it is back"
            )
        return Decision(
            allowed=True,
            limit=rule.limit,
            remaining=0,
            retry_after=0,
            reset_after=0,
            enforced=False,
        )

    def _lease(self, key: str, route_class: RouteClass) -> _Lease | None:
        """The subject's lease, when its class is limited loosely enough to lease."""
        if self._max_lease[route_class] < 2:
            return None
        lease = self._leases.get(key)
        if lease is None:
            if len(self._leases) >= _LEASES_MAX:
                self._leases.clear()  # their unused requests lapse: fewer admitted, not more
            lease = self._leases[key] = _Lease()
        return lease

    def _keep(self, lease: _Lease, count: int, sent_at: float, reset_after: float) -> None:
        """Add ``count`` requests taken by a call sent at ``sent_at`` to the lease.

        Redis counted them at its ``now``, which is after ``sent_at``: measured from there the
        lifetime ends no later than Redis assumed. Requests another call added meanwhile keep
        their earlier end."""
        expires_at = sent_at + self._lease_seconds
        lease.expires_at = min(lease.expires_at, expires_at) if lease.tokens else expires_at
        lease.tokens += count
        lease.tat = max(lease.tat, sent_at + reset_after)


def _leased_decision(rule: RateLimitRule, lease: _Lease, now: float) -> Decision:
    """What Redis would have answered for a leased request used ``now``."""
    emission = rule.period_seconds / rule.limit
    tat = lease.tat - lease.tokens * emission  # the bucket's time after this request
    return Decision(
        allowed=True,
        limit=rule.limit,
        remaining=max(0, math.floor((now + rule.period_seconds - tat) / emission + 1e-6)),
        retry_after=0.0,
        reset_after=max(0.0, tat - now),
    )


class LoginThrottle:
    """Failed-login counters per account and per client address (fail closed without Redis)."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        max_per_account: int,
        max_per_address: int,
        window_seconds: int,
        health: RedisHealth,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}gateway:login:"
        self._max_per_account = max_per_account
        self._max_per_address = max_per_address
        self._window = window_seconds
        self._health = health
        self._read = redis.register_script(COUNTERS_SCRIPT)
        self._record = redis.register_script(RECORD_FAILURE_SCRIPT)

    def _keys(self, account: str, address: str) -> list[str]:
        # Hash the email: Redis need not hold a list of who tried to log in.
        account_id = hashlib.sha256(account.encode()).hexdigest()[:32]
        return [f"{self._prefix}acct:{account_id}", f"{self._prefix}addr:{address}"]

    async def check(self, account: str, address: str) -> None:
        """429 when this account or this address has failed too often in the window."""
        keys = self._keys(account, address)
        try:
            self._require_redis()
            account_count, account_ttl, address_count, address_ttl = await self._read(
                keys=keys, args=[]
            )
        except _REDIS_ERRORS as exc:
            self._health.failed(exc)
            raise self._unavailable() from None
        self._health.succeeded()
        for count, ttl_ms, limit, what in (
            (account_count, account_ttl, self._max_per_account, "this account"),
            (address_count, address_ttl, self._max_per_address, "your address"),
        ):
            if int(count) >= limit:
                retry_after = max(int(ttl_ms), 1000) / 1000
                raise RateLimitExceeded(
                    f"too many failed sign-ins for {what}; retry later", retry_after=retry_after
                )

    async def record_failure(self, account: str, address: str) -> None:
        try:
            self._require_redis()
            await self._record(keys=self._keys(account, address), args=[self._window])
        except _REDIS_ERRORS as exc:
            self._health.failed(exc)
            raise self._unavailable() from None

    async def clear_account(self, account: str) -> None:
        """A successful login forgives the account's failures (not the address's)."""
        try:
            await self._redis.delete(self._keys(account, "")[0])
        except _REDIS_ERRORS as exc:
            self._health.failed(exc)

    def _require_redis(self) -> None:
        if not self._health.usable():
            raise ConnectionError(self._health.last_error or "redis unreachable")

    @staticmethod
    def _unavailable() -> DependencyUnavailable:
        return DependencyUnavailable(
            "sign-in is unavailable while its rate limiting store (Redis) is down; retry shortly"
        )
