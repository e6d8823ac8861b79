"""Alembic migrations for blogdata (shipped in the wheel as ``blogdata.migrations``)."""
