"""AlgoTrade API gateway: users, tokens, API keys, rate limits and routing to every service."""
