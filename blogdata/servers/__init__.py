"""Running PostgreSQL locally: the embedded server, its standby, PgBouncer, their watchdog."""

__all__: list[str] = []
