"""Which database errors the worker retries (``workers.retry.is_transient``), without services.

The errors are built the way SQLAlchemy's asyncpg dialect builds them: the asyncpg
exception, translated to the dialect's DB-API class (its ``__cause__``), wrapped in a
``DBAPIError``. The Postgres restart fault test (tests/test_fault_postgres_restart.py)
shows them on a real server.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)
from sqlalchemy.exc import DBAPIError

from workers.retry import is_transient

_DBAPI = AsyncAdapt_asyncpg_dbapi(asyncpg)


def _wrapped(error: Exception, *, invalidated: bool) -> DBAPIError:
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(_DBAPI, error)
    except _DBAPI.Error as exc:
        translated = exc
    assert translated.__cause__ is error
    wrapped = DBAPIError.instance(
        "COMMIT", None, translated, _DBAPI.Error, connection_invalidated=invalidated
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped


@pytest.mark.parametrize("invalidated", [True, False])
@pytest.mark.parametrize(
    "error",
    [
        # The next statement on a connection whose server sent FATAL 57P01 while it was
        # idle: no SQLSTATE, and only flagged a disconnect once the socket is seen closed.
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        ),
        asyncpg.exceptions.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation"
        ),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to admin command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    ],
    ids=["internal-client-error", "connection-does-not-exist", "admin-shutdown", "starting-up"],
)
def test_a_dead_or_restarting_server_is_transient(error: Exception, invalidated: bool) -> None:
    assert is_transient(_wrapped(error, invalidated=invalidated))
    assert is_transient(error)  # raised by asyncpg directly, outside SQLAlchemy


@pytest.mark.parametrize(
    "error",
    [ConnectionRefusedError(111, "Connect call failed"), ConnectionResetError(104, "reset")],
)
def test_connect_and_socket_errors_are_transient(error: OSError) -> None:
    assert is_transient(error)


def test_a_bug_in_the_sql_is_not_transient() -> None:
    error = asyncpg.exceptions.UndefinedColumnError('column "nope" does not exist')
    assert not is_transient(_wrapped(error, invalidated=False))
