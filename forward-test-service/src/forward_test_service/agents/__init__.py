"""Execution agents: trading terminals (a MetaTrader 5 expert advisor, a NinjaTrader 8
strategy) that take the platform's orders and report what their account really holds.

- `registry`: agents in PostgreSQL (owner, platform, account);
- `connections`: heartbeats, connection states (healthy, degraded, stale, offline);
- `commands`: each agent's priority queue in Redis, with leases, retries and expiry;
- `wakeups`: a queued command wakes the agent's waiting long-poll at once;
- `sync`: trade sync, reconciled against the platform's record by a stated policy;
- `health`: the 0-100 health score and its components;
- `journal`: what the Redis scripts decided, written to PostgreSQL and ``agent.events.v1``;
- `desk`: the one object routes use, with the access rules.

The protocol is described for agent authors in ``docs/agents.md``.
"""
