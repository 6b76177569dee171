"""AlgoTrade analytics service: performance and risk metrics across sessions and backtests."""
