"""Live market data providers (exchange feeds) that feed the common ingest path."""
