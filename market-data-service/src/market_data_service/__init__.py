"""AlgoTrade market data service: bar ingestion, Redis sliding windows, history and publishing."""
