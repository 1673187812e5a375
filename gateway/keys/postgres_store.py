"""The shared key store: PostgreSQL (`key_store.database_url`), for replicas behind one load
balancer. A connection pool in worker threads; the schema is created under an advisory lock so
replicas starting together do not race."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.keys.sql_store import SqlKeyStore, Tx
from gateway.keys.store import KeyStoreError

SCHEMA_LOCK = 7_311_004  # pg_advisory_xact_lock id for schema creation
_PLACEHOLDER = re.compile(r"\?")


def _pg(sql: str) -> str:
    return _PLACEHOLDER.sub("%s", sql)


def redacted(url: str) -> str:
    """The URL without its password, for logs and errors."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


class _PgTx:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._connection.execute(_pg(sql), params).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(_pg(sql), rows)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._connection.execute(_pg(sql), params).fetchall())


class PostgresKeyStore(SqlKeyStore):
    def __init__(self, url: str, min_size: int = 1, max_size: int = 4, open_timeout: float = 10.0) -> None:
        self._url = url
        self._sizes = (min_size, max_size)
        self._open_timeout = open_timeout
        self._pool: ConnectionPool | None = None

    def __repr__(self) -> str:
        return f"PostgresKeyStore({redacted(self._url)!r})"

    def _open(self) -> None:
        pool = ConnectionPool(
            self._url, min_size=self._sizes[0], max_size=self._sizes[1], open=False, timeout=self._open_timeout
        )
        try:
            pool.open(wait=True, timeout=self._open_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            pool.close()
            raise KeyStoreError(f"cannot connect to the key store {redacted(self._url)}: {exc}") from None
        self._pool = pool

    def _close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _create_schema(self, tx: Tx) -> None:
        tx.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        super()._create_schema(tx)

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        if self._pool is None:
            raise KeyStoreError("the key store is not open")
        try:
            with self._pool.connection() as connection, connection.transaction():
                yield _PgTx(connection)
        except psycopg.Error as exc:
            raise KeyStoreError(f"key store {redacted(self._url)}: {type(exc).__name__}: {exc}") from None
