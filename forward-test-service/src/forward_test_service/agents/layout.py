"""Where an agent's state lives in Redis.

An agent's keys share the prefix ``<prefix>agent:{<id>}:``. The scripts also write the keys all
agents share (the last-seen index, the journal, the wake channel), so they assume one Redis
primary, as the rest of the platform does; the ``{id}`` hash tag keeps one agent's keys together
should the per-agent part ever move to a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AgentKeys:
    """The Redis keys of one agent."""

    base: str  # "<prefix>agent:{<id>}:"

    @classmethod
    def of(cls, prefix: str, agent_id: str) -> AgentKeys:
        return cls(f"{prefix}agent:{{{agent_id}}}:")

    @property
    def meta(self) -> str:
        """Hash: ``user_id``, ``heartbeat_ms`` (who owns the agent; written at registration)."""
        return self.base + "meta"

    @property
    def ready(self) -> str:
        """Sorted set of command ids ready to lease, by priority then age."""
        return self.base + "ready"

    @property
    def delayed(self) -> str:
        """Sorted set of command ids waiting out a retry backoff, by when they are due."""
        return self.base + "delayed"

    @property
    def leased(self) -> str:
        """Sorted set of leased command ids, by lease deadline."""
        return self.base + "leased"

    @property
    def history(self) -> str:
        """Sorted set of every command id by enqueue number (newest highest): the owner's
        read-only list of the queue. Ids of commands whose hash expired are skipped on read and
        pruned at the next enqueue."""
        return self.base + "history"

    @property
    def stats(self) -> str:
        """Hash of command counters: enqueued, executed, rejected, failed, expired."""
        return self.base + "stats"

    @property
    def latency(self) -> str:
        """List of recent enqueue→delivery times in microseconds (newest first, capped)."""
        return self.base + "latency"

    @property
    def heartbeat(self) -> str:
        """Hash of the connection: last heartbeat, smoothed interval, jitter and latency, state,
        the last account state."""
        return self.base + "hb"

    @property
    def positions(self) -> str:
        """Hash ticket → position JSON: the platform's record of what the account holds."""
        return self.base + "positions"

    @property
    def sync(self) -> str:
        """Hash: the last sync's summary, sync and conflict counts."""
        return self.base + "sync"

    def command(self, command_id: str) -> str:
        return self.base + "cmd:" + command_id

    def idempotency(self, key: str) -> str:
        return self.base + "idem:" + key

    @property
    def command_prefix(self) -> str:
        return self.base + "cmd:"


@dataclass(frozen=True)
class SharedKeys:
    """Keys shared by every agent of this deployment."""

    prefix: str

    @property
    def last_seen(self) -> str:
        """Sorted set agent id → last heartbeat (ms), of agents not yet announced offline."""
        return self.prefix + "agents:last-seen"

    @property
    def journal(self) -> str:
        """List of event records (JSON) waiting to be written to PostgreSQL and the outbox."""
        return self.prefix + "agents:journal"

    @property
    def journal_lock(self) -> str:
        return self.prefix + "agents:journal-lock"

    @property
    def wake_channel(self) -> str:
        """Pub/sub channel: an agent id is published when a command becomes ready for it."""
        return self.prefix + "agents:wake"


def text(value: Any) -> str:
    """A Redis reply as text (the clients answer bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
