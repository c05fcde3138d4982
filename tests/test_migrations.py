"""The migrations build exactly the schema the models describe.

Alembic compares the migrated test database with ``Base.metadata``; any table,
column, index, constraint or type that one has and the other lacks is a
difference, so a model change without its migration (or the reverse) fails here.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from punchline.db.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        differences = await conn.run_sync(_differences)
    assert differences == [], "\n".join(str(d) for d in differences)
