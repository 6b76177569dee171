"""AlgoTrade shared library: the contracts and mechanisms every service imports.

Config base, event envelope and topics, the Kafka bus, database base and outbox, S3 storage,
token verification, the service app factory, the strategy engine and the embedded dev stack.

Rule: this package never imports a service package. Services depend on it, never the reverse.
"""
