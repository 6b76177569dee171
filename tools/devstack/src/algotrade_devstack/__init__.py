"""The embedded stack: infrastructure without Docker, and a supervisor for the seven services."""
