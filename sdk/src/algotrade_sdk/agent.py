"""`ReferenceAgent`: the execution-agent protocol, end to end, against a `SimulatedAccount`.

What a terminal plugin (clients/mt5, clients/ninjatrader) does, in Python, so that the protocol
can be run and tested without a broker. Three loops share one HTTP client:

- **heartbeat** every ``heartbeat_seconds``: the account (balance, equity, positions, trading
  allowed), the client's clock and the previous heartbeat's round trip. It is also the probe:
  when any call finds the platform away, the link is down, the other loops wait, and the
  heartbeat retries with capped exponential backoff and jitter until one is answered;
- **commands**: long-polls (``wait`` up to 25 s), executes each leased command on the account
  (a command whose idempotency key was already filled is acked from that fill, never executed
  twice), acks it at once (an ack that cannot be delivered is kept and sent first when the link
  is back), and every ``sync_seconds`` syncs all open positions and the recently closed trades.
  Syncs run between polls, after every ack was delivered, so a sync never shows the platform a
  position whose ack is still on its way. An ack lost with the agent itself (it stopped or
  crashed first) is not lost either: the command comes back after its lease and is acked from
  the fill the account recorded;
- **bars**: `push_bar` queues a closed bar; the loop pushes the queue while the link is up and
  removes a batch only once market data answered it, so a disconnection loses no bar (a bar
  answered ``duplicate`` after a lost answer is fine, and counted).

Run it from the command line with ``python -m algotrade_sdk.agent --url ... --agent-id ...``;
the API key comes from an environment variable (``--key-env``), never from an argument (which
other users of the machine can read in the process list), and is never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from algotrade_sdk.account import PriceSource, SimulatedAccount
from algotrade_sdk.backoff import Backoff
from algotrade_sdk.bars import Bar, BarQueue, LastCloses
from algotrade_sdk.client import (
    AgentClient,
    AgentClientError,
    CredentialsRefused,
    RequestRefused,
    ServerUnavailable,
)
from algotrade_sdk.execution import CommandExecutor, Execution
from algotrade_sdk.protocol import (
    POLL_WAIT_MAX_SECONDS,
    ClosedTradeReport,
    Command,
    CommandAck,
    Heartbeat,
    HeartbeatAnswer,
    PositionReport,
    SyncReport,
    TradeSync,
)

logger = logging.getLogger(__name__)

KEY_ENV = "ALGOTRADE_AGENT_KEY"

ExecutedHook = Callable[[Command, Execution], None]
"""Called after a command was executed (and the account saved), before its ack is sent."""


@dataclass(frozen=True)
class AgentConfig:
    """Where the agent connects and how often it does what. ``heartbeat_seconds`` should be
    the interval registered for the agent: the platform judges the connection against it."""

    url: str
    agent_id: str
    api_key: str = field(repr=False)
    heartbeat_seconds: float = 5.0
    sync_seconds: float = 30.0
    poll_wait_seconds: float = POLL_WAIT_MAX_SECONDS
    poll_limit: int = 10
    closed_lookback_seconds: float = 86_400.0
    """Closed trades younger than this go into each sync."""
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    refused_wait_seconds: float = 60.0
    """The wait after a refused key (401/403): retrying sooner cannot help."""
    bar_batch_max: int = 1_000
    request_timeout_seconds: float = 15.0

    def __post_init__(self) -> None:
        if not 0 <= self.poll_wait_seconds <= POLL_WAIT_MAX_SECONDS:
            raise ValueError(f"poll_wait_seconds must be within 0..{POLL_WAIT_MAX_SECONDS}")
        if not 1 <= self.poll_limit <= 100:
            raise ValueError("poll_limit must be within 1..100")
        if not 1 <= self.bar_batch_max <= 5_000:
            raise ValueError("bar_batch_max must be within 1..5000")
        if self.heartbeat_seconds <= 0 or self.sync_seconds <= 0:
            raise ValueError("heartbeat_seconds and sync_seconds must be positive")


@dataclass
class AgentStats:
    """What the agent did, for its operator and for tests."""

    heartbeats: int = 0
    connects: int = 0
    disconnects: int = 0
    executed: int = 0
    rejected: int = 0
    failed: int = 0
    replayed: int = 0
    """Commands delivered again and acked from their recorded fill."""
    acks: int = 0
    acks_dropped: int = 0
    syncs: int = 0
    sync_conflicts: int = 0
    bars_queued: int = 0
    bars_accepted: int = 0
    bars_duplicate: int = 0
    bars_corrected: int = 0
    bars_rejected: int = 0
    last_heartbeat: HeartbeatAnswer | None = None
    last_sync: SyncReport | None = None
    last_sync_read_at: float | None = None
    """When the last sync read the account (``time.monotonic()``)."""

    @property
    def reconnects(self) -> int:
        """Times the link came back after it was up once."""
        return max(0, self.connects - 1)


class Link:
    """Whether the platform answers, as the loops last saw it: ``up`` and ``down`` are set
    accordingly, so that a loop can wait for either."""

    def __init__(self, stats: AgentStats) -> None:
        self.up = asyncio.Event()
        self.down = asyncio.Event()
        self.down.set()
        self._stats = stats

    @property
    def is_up(self) -> bool:
        return self.up.is_set()

    def connected(self) -> None:
        if self.is_up:
            return
        self._stats.connects += 1
        if self._stats.connects > 1:
            logger.warning("reconnected to the platform")
        else:
            logger.info("connected to the platform")
        self.down.clear()
        self.up.set()

    def lost(self, error: AgentClientError) -> None:
        if not self.is_up:
            return
        self._stats.disconnects += 1
        logger.warning("lost the platform: %s", error)
        self.up.clear()
        self.down.set()

    def closed(self) -> None:
        """The agent stopped: down, without counting a disconnection."""
        self.up.clear()
        self.down.set()


def delay_after(error: AgentClientError, backoff: Backoff, refused_wait: float) -> float:
    """How long a loop waits after ``error`` before it tries again: the backoff's next delay
    (at least the server's Retry-After, within the cap), or ``refused_wait`` for a request the
    server refused (retrying it soon cannot help)."""
    if isinstance(error, CredentialsRefused | RequestRefused):
        return refused_wait
    delay = backoff.next_delay()
    if isinstance(error, ServerUnavailable) and error.retry_after is not None:
        delay = max(delay, min(error.retry_after, backoff.maximum))
    return delay


class ReferenceAgent:
    """The agent (see the module doc). `run` until `stop`; `push_bar` from anywhere in the
    same event loop."""

    def __init__(
        self,
        config: AgentConfig,
        account: SimulatedAccount,
        *,
        prices: PriceSource | None = None,
        on_executed: ExecutedHook | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.account = account
        self.closes = LastCloses()
        self.bars = BarQueue()
        self.stats = AgentStats()
        self._prices: PriceSource = prices if prices is not None else self.closes
        self._executor = CommandExecutor(account, self._prices)
        self._on_executed = on_executed
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._transport = transport
        self._link = Link(self.stats)
        self._pending_acks: list[tuple[str, CommandAck]] = []
        self._bars_waiting = asyncio.Event()
        self._stopping = asyncio.Event()
        self._client: AgentClient | None = None
        self._next_sync = 0.0
        self._rtt_ms: float | None = None
        self._promise_checked = False

    @property
    def connected(self) -> bool:
        return self._link.is_up

    @property
    def pending_acks(self) -> int:
        return len(self._pending_acks)

    def push_bar(self, bar: Bar) -> None:
        """Queue a closed bar for market data; its close is the symbol's price from now on."""
        self.closes.record(bar)
        self.bars.add(bar)
        self.stats.bars_queued += 1
        self._bars_waiting.set()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Run the loops until `stop` (or until one of them raises, e.g. an ``on_executed``
        hook: the exception is raised here)."""
        config = self.config
        async with AgentClient(
            config.url,
            config.agent_id,
            config.api_key,
            timeout_seconds=config.request_timeout_seconds,
            transport=self._transport,
        ) as client:
            self._client = client
            loops = [
                asyncio.create_task(self._heartbeat_loop(), name="agent-heartbeat"),
                asyncio.create_task(self._command_loop(), name="agent-commands"),
                asyncio.create_task(self._bar_loop(), name="agent-bars"),
            ]
            stopping = asyncio.create_task(self._stopping.wait())
            try:
                done, _ = await asyncio.wait(
                    [*loops, stopping], return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in (*loops, stopping):
                    task.cancel()
                await asyncio.gather(*loops, stopping, return_exceptions=True)
                self._client = None
                self._link.closed()
            for task in loops:
                error = task.exception() if task in done and not task.cancelled() else None
                if error is not None:
                    raise error

    # ------------------------------------------------------------------ heartbeat

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self._backoff()
        delay = 0.0
        while True:
            await self._pause(delay)
            started = loop.time()
            try:
                await self._beat()
            except AgentClientError as error:
                self._link.lost(error)
                delay = delay_after(error, backoff, self.config.refused_wait_seconds)
                logger.info("heartbeat failed (%s); next attempt in %.2f s", error, delay)
                continue
            backoff.reset()
            self._link.connected()
            delay = max(0.0, self.config.heartbeat_seconds - (loop.time() - started))

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` seconds; while the link is up, its loss (seen by another loop) ends
        the sleep early, so that the heartbeat probes at once."""
        if not self._link.is_up:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._link.down.wait(), delay)

    async def _beat(self) -> None:
        account = self.account
        equity = account.equity(self._prices)
        body: Heartbeat = {
            "balance": account.balance,
            "equity": equity,
            "margin": 0.0,
            "free_margin": equity,
            "open_positions": len(account.positions),
            "terminal_connected": True,
            "trade_allowed": account.trading_allowed,
            "client_time_ms": self._now_ms(),
        }
        if self._rtt_ms is not None:
            body["rtt_ms"] = round(self._rtt_ms, 3)
        sent = time.monotonic()
        answer = await self._http().heartbeat(body)
        self._rtt_ms = (time.monotonic() - sent) * 1000
        self.stats.heartbeats += 1
        self.stats.last_heartbeat = answer
        if not self._promise_checked:
            self._promise_checked = True
            if abs(answer["heartbeat_seconds"] - self.config.heartbeat_seconds) > 1e-9:
                logger.warning(
                    "the agent was registered with heartbeat_seconds=%s but beats every %s s: "
                    "the platform judges the connection against the registered interval",
                    answer["heartbeat_seconds"],
                    self.config.heartbeat_seconds,
                )

    # ------------------------------------------------------------------ commands and sync

    async def _command_loop(self) -> None:
        # A backoff of its own: should polls fail while heartbeats succeed, the link would
        # flap and this loop must not spin.
        backoff = self._backoff()
        while True:
            await self._link.up.wait()
            try:
                await self._command_round()
            except AgentClientError as error:
                self._link.lost(error)
                delay = delay_after(error, backoff, self.config.refused_wait_seconds)
                logger.info("command poll failed (%s); next round in %.2f s", error, delay)
                await asyncio.sleep(delay)
            else:
                backoff.reset()

    async def _command_round(self) -> None:
        loop = asyncio.get_running_loop()
        await self._deliver_acks()
        wait = min(self.config.poll_wait_seconds, max(0.0, self._next_sync - loop.time()))
        leased = await self._http().poll(wait, self.config.poll_limit)
        undelivered: AgentClientError | None = None
        for command in leased["data"]:
            # Every leased command is executed even when an ack cannot be delivered: the
            # lease is this agent's, and the kept acks go out first when the link is back.
            execution = self._executor.execute(command)
            self._count(execution)
            if self._on_executed is not None:
                self._on_executed(command, execution)
            self._pending_acks.append((command["id"], execution.ack))
            if undelivered is None:
                try:
                    await self._deliver_acks()
                except AgentClientError as error:
                    undelivered = error
        if undelivered is not None:
            raise undelivered
        if loop.time() >= self._next_sync:
            await self._sync()
            self._next_sync = loop.time() + self.config.sync_seconds

    def _count(self, execution: Execution) -> None:
        if execution.replayed:
            self.stats.replayed += 1
        elif execution.ack["outcome"] == "executed":
            self.stats.executed += 1
        elif execution.ack["outcome"] == "rejected":
            self.stats.rejected += 1
        else:
            self.stats.failed += 1

    async def _deliver_acks(self) -> None:
        """Send the kept acks, oldest first; one the server refuses for good is dropped."""
        while self._pending_acks:
            command_id, ack = self._pending_acks[0]
            try:
                await self._http().ack(command_id, ack)
            except RequestRefused as refused:
                # 409: the command ended otherwise meanwhile (expired, or failed after its
                # deliveries); 404: it is gone. The account did execute it: the next sync
                # shows the platform what it really holds.
                logger.error("ack of command %s (%s) refused: %s", command_id, ack, refused)
                self.stats.acks_dropped += 1
            else:
                self.stats.acks += 1
            self._pending_acks.pop(0)

    async def _sync(self) -> None:
        """Report every open position and the recently closed trades; log what the
        reconciliation found. The account is never changed by a sync."""
        account = self.account
        read_at = time.monotonic()
        since = self._now_ms() - int(self.config.closed_lookback_seconds * 1000)
        positions: list[PositionReport] = []
        for p in account.positions.values():
            position: PositionReport = {
                "ticket": p.ticket,
                "symbol": p.symbol,
                "side": p.side,
                "volume": p.volume,
                "open_price": p.open_price,
                "sl": p.sl,
                "tp": p.tp,
                "opened_at_ms": p.opened_at_ms,
            }
            if p.comment is not None:
                position["comment"] = p.comment
            positions.append(position)
        closed: list[ClosedTradeReport] = []
        for t in account.closed_since(since):
            deal: ClosedTradeReport = {
                "ticket": t.ticket,
                "symbol": t.symbol,
                "side": t.side,
                "volume": t.volume,
                "open_price": t.open_price,
                "close_price": t.close_price,
                "closed_at_ms": t.closed_at_ms,
                "profit": t.profit,
            }
            if t.deal is not None:
                deal["deal"] = t.deal
            if t.commission:
                deal["commission"] = t.commission
            closed.append(deal)
        body: TradeSync = {"positions": positions, "closed": closed}
        try:
            report = await self._http().sync(body)
        except RequestRefused as refused:
            logger.error("trade sync refused: %s", refused)
            return
        self.stats.syncs += 1
        self.stats.last_sync = report
        self.stats.last_sync_read_at = read_at
        if report["conflicts"]:
            self.stats.sync_conflicts += report["conflicts"]
            logger.warning(
                "trade sync: %d conflict(s); unknown to the platform %s, missing here %s, "
                "diverging %s",
                report["conflicts"],
                report["unknown_to_server"],
                report["missing_on_platform"],
                report["diverging"],
            )

    # ------------------------------------------------------------------ bars

    async def _bar_loop(self) -> None:
        backoff = self._backoff()
        while True:
            await self._bars_waiting.wait()
            await self._link.up.wait()
            batch = self.bars.head(self.config.bar_batch_max)
            if not batch:
                self._bars_waiting.clear()
                continue
            try:
                result = await self._http().push_bars(
                    {
                        "symbol": batch[0].symbol,
                        "timeframe": batch[0].timeframe,
                        "bars": [bar.wire() for bar in batch],
                    }
                )
            except (ServerUnavailable, CredentialsRefused) as error:
                delay = delay_after(error, backoff, self.config.refused_wait_seconds)
                logger.warning("bar push failed (%s); retrying in %.2f s", error, delay)
                await asyncio.sleep(delay)
                continue
            except RequestRefused as refused:
                logger.error("bar push of %d bars refused, dropped: %s", len(batch), refused)
                self.stats.bars_rejected += len(batch)
                self.bars.drop(len(batch))
                continue
            backoff.reset()
            self.bars.drop(len(batch))
            counts = result["counts"]
            self.stats.bars_accepted += counts["accepted"]
            self.stats.bars_duplicate += counts["duplicate"]
            self.stats.bars_corrected += counts["corrected"]
            self.stats.bars_rejected += counts["rejected"]
            if result["rejections"]:
                logger.warning("market data rejected bars: %s", result["rejections"])

    # ------------------------------------------------------------------ helpers

    def _backoff(self) -> Backoff:
        return Backoff(
            self.config.backoff_initial_seconds, self.config.backoff_max_seconds, rng=self._rng
        )

    def _http(self) -> AgentClient:
        if self._client is None:
            raise RuntimeError("the agent is not running")
        return self._client

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


# ---------------------------------------------------------------------- command line


def _price(text: str) -> tuple[str, float]:
    symbol, sep, price = text.partition("=")
    if not sep or not symbol:
        raise argparse.ArgumentTypeError("expected SYMBOL=PRICE")
    try:
        return symbol, float(price)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a price: {price!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m algotrade_sdk.agent",
        description="Run the reference execution agent against a simulated account.",
    )
    parser.add_argument("--url", required=True, help="the gateway's URL (scheme and host)")
    parser.add_argument("--agent-id", required=True)
    parser.add_argument(
        "--key-env",
        default=KEY_ENV,
        help=f"the environment variable holding the agent's API key (default {KEY_ENV})",
    )
    parser.add_argument(
        "--account",
        type=Path,
        default=Path("algotrade-account.json"),
        help="the simulated account's file (created when missing)",
    )
    parser.add_argument("--balance", type=float, default=10_000.0, help="a new account's balance")
    parser.add_argument("--currency", default="USD", help="a new account's currency")
    parser.add_argument("--heartbeat-seconds", type=float, default=5.0)
    parser.add_argument("--sync-seconds", type=float, default=30.0)
    parser.add_argument("--poll-wait-seconds", type=float, default=POLL_WAIT_MAX_SECONDS)
    parser.add_argument("--backoff-initial-seconds", type=float, default=1.0)
    parser.add_argument("--backoff-max-seconds", type=float, default=60.0)
    parser.add_argument(
        "--price",
        type=_price,
        action="append",
        default=[],
        metavar="SYMBOL=PRICE",
        help="a simulated price (repeatable); without one, orders for the symbol are rejected",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


async def _run_until_signalled(agent: ReferenceAgent) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, agent.stop)
    await agent.run()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    key = os.environ.get(args.key_env, "").strip()
    if not key:
        print(f"error: put the agent's API key in ${args.key_env}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # otherwise a line per request
    config = AgentConfig(
        url=args.url,
        agent_id=args.agent_id,
        api_key=key,
        heartbeat_seconds=args.heartbeat_seconds,
        sync_seconds=args.sync_seconds,
        poll_wait_seconds=args.poll_wait_seconds,
        backoff_initial_seconds=args.backoff_initial_seconds,
        backoff_max_seconds=args.backoff_max_seconds,
    )
    account = SimulatedAccount.open_file(args.account, balance=args.balance, currency=args.currency)
    agent = ReferenceAgent(config, account)
    for symbol, price in args.price:
        agent.closes.set(symbol, price)
    logger.info(
        "agent %s on %s, account %s (%d open positions)",
        config.agent_id,
        config.url,
        args.account,
        len(account.positions),
    )
    asyncio.run(_run_until_signalled(agent))
    logger.info("agent stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
