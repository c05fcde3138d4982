"""``sql("…")``: SQLAlchemy's ``text()``, built once per distinct statement.

``text()`` parses its string for bind parameters on every call; on the synchronous
paths (a redeem runs ten statements) that was ~9% of the API's CPU. A TextClause
is immutable (``bindparams()``/``columns()`` return new objects), so one instance
per statement string can be shared, and SQLAlchemy's compiled cache keys on it.
"""

from __future__ import annotations

import functools

from sqlalchemy import TextClause, text


@functools.lru_cache(maxsize=4096)
def sql(statement: str) -> TextClause:
    return text(statement)
