"""AlgoTrade shared library: the contracts and mechanisms every service imports.

Config base, event envelope and topics, the Kafka bus, database base and outbox, S3 storage,
token verification, Redis windows, the service app factory, the strategy engine, the fill model
and the metrics.

Rule: this package never imports a service package, nor the dev tools (`tools/devstack`,
`tools/testkit`). Services depend on it, never the reverse.
"""
