"""Test support: the pytest plugin with real-infrastructure fixtures and small helpers."""
