"""Telling "the database cannot be reached right now" (restart, crash, network) apart from every other error.

Such an error is temporary and says nothing about the request itself: the API answers 503 (send it again; with
the same Idempotency-Key an order is never created twice), the bot tells the caller the order could not be
registered and offers a person. Depending on where the connection broke it surfaces as a SQLAlchemy error whose
connection was invalidated, as the driver's own exception (asyncpg: while connecting, a pool connect is not
translated by SQLAlchemy) or as a plain socket error (connection refused while the server is down).
"""

from __future__ import annotations

import errno

import asyncpg
from sqlalchemy.exc import DBAPIError

# SQLSTATE class 08 (connection exception); 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now
# (starting up, recovering after a crash); 53300 too_many_connections.
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.EHOSTUNREACH,
                   errno.ENETUNREACH, errno.ETIMEDOUT}

RETRY_AFTER_SECONDS = 2


def database_unavailable(exc: BaseException) -> bool:
    """True if `exc` (or what caused it) says the database server is unreachable, not that a statement failed."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if str(getattr(seen, "sqlstate", "") or "").startswith(UNAVAILABLE_SQLSTATES):
            return True
        if isinstance(seen, asyncpg.InterfaceError) and "closed" in str(seen):
            return True  # "connection is closed", "… the underlying connection is closed"
        if isinstance(seen, ConnectionError) or (isinstance(seen, OSError) and seen.errno in _NETWORK_ERRNOS):
            return True
        seen = seen.orig if isinstance(seen, DBAPIError) else seen.__cause__
    return False
