"""AlgoTrade notification service: WebSocket connections, subscriptions and fan-out of events."""
