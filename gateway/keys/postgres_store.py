"""The shared key store: PostgreSQL (`key_store.database_url`), for replicas behind one load
balancer. A connection pool in worker threads; the schema is created under an advisory lock so
replicas starting together do not race.

The URL may be a live secret: when it rotates (a new password), a new pool is opened with it
and swapped in; the old pool is closed, which lets transactions holding its connections finish
(psycopg_pool closes a connection in use only when it is returned). If the new URL cannot
connect, the old pool stays in use and the failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from gateway.keys.sql_store import SqlKeyStore, Tx
from gateway.keys.store import KeyStoreError
from meterline.secrets import LiveSecret, SecretVersion

log = logging.getLogger(__name__)

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
    def __init__(self, url: str | LiveSecret, min_size: int = 1, max_size: int = 4, open_timeout: float = 10.0) -> None:
        self._secret = url if isinstance(url, LiveSecret) else LiveSecret.fixed(url)
        self._url = self._secret.reveal()
        self._sizes = (min_size, max_size)
        self._open_timeout = open_timeout
        self._pool: ConnectionPool | None = None
        self._swap_lock = threading.Lock()
        self._swaps: set[asyncio.Task[None]] = set()
        self.reconnects = 0
        """Pools swapped in after the URL rotated."""
        self._secret.on_change(self._url_changed)

    def __repr__(self) -> str:
        return f"PostgresKeyStore({redacted(self._url)!r})"

    def _connect(self, url: str) -> ConnectionPool:
        pool = ConnectionPool(
            url, min_size=self._sizes[0], max_size=self._sizes[1], open=False, timeout=self._open_timeout
        )
        try:
            pool.open(wait=True, timeout=self._open_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            pool.close()
            raise KeyStoreError(f"cannot connect to the key store {redacted(url)}: {_redact_error(exc, url)}") from None
        return pool

    def _open(self) -> None:
        self._pool = self._connect(self._url)

    def _close(self) -> None:
        with self._swap_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _url_changed(self, new: SecretVersion, old: SecretVersion) -> None:
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._swap, new.value))
        self._swaps.add(task)
        task.add_done_callback(self._swaps.discard)

    def _swap(self, url: str) -> None:
        with self._swap_lock:
            if self._pool is None:  # not open (yet or any more): the next open uses the new URL
                self._url = url
                return
            try:
                pool = self._connect(url)
            except KeyStoreError as exc:
                log.warning("key store: the rotated database_url does not connect, keeping the old pool: %s", exc)
                return
            old, self._pool, self._url = self._pool, pool, url
            self.reconnects += 1
        log.info("key store: reconnected with the rotated database_url %s", redacted(url))
        old.close()

    def _create_schema(self, tx: Tx) -> None:
        tx.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        super()._create_schema(tx)

    def _connection(self) -> tuple[ConnectionPool, psycopg.Connection[Any]]:
        for _ in range(3):  # a pool closed by a URL rotation under our feet: take the new one
            pool = self._pool
            if pool is None:
                raise KeyStoreError("the key store is not open")
            try:
                return pool, pool.getconn()
            except PoolClosed:
                if pool is self._pool:
                    raise KeyStoreError("the key store is closed") from None
            except (PoolTimeout, psycopg.Error) as exc:
                raise KeyStoreError(f"key store {redacted(self._url)}: {type(exc).__name__}") from None
        raise KeyStoreError("the key store keeps reconnecting")

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        pool, connection = self._connection()
        try:
            with connection.transaction():
                yield _PgTx(connection)
        except psycopg.Error as exc:
            raise KeyStoreError(f"key store {redacted(self._url)}: {type(exc).__name__}: {exc}") from None
        finally:
            pool.putconn(connection)


def _redact_error(exc: Exception, url: str) -> str:
    """psycopg's message, without the URL's password should a message ever quote it."""
    text = str(exc)
    password = re.match(r"[^:]+://[^:/@]*:([^@]*)@", url)
    return text.replace(password.group(1), "***") if password and password.group(1) else text
