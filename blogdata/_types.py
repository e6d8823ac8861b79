"""Types shared across layers."""

from __future__ import annotations

from typing import TypeAlias

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

__all__ = ["Db"]

#: What an operation reads or writes through: the caller's session or connection.
Db: TypeAlias = AsyncSession | AsyncConnection
