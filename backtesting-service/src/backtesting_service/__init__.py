"""AlgoTrade backtesting service: backtest jobs and sweeps, workers, results in S3."""
