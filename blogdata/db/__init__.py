"""Reaching a database: engines, read routing, units of work (sessions), migrations."""

__all__: list[str] = []
