"""The embedded key store: SQLite at `<data_dir>/keys.sqlite` (WAL, so the CLI and a gateway
can use it at once)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.keys.sql_store import SqlKeyStore, Tx
from gateway.keys.store import KeyStoreError

FILENAME = "keys.sqlite"


class _SqliteTx:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._connection.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._connection.executemany(sql, rows)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._connection.execute(sql, params).fetchall())


class SqliteKeyStore(SqlKeyStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqliteKeyStore({str(self.path)!r})"

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=10000")
        except (sqlite3.Error, OSError) as exc:
            raise KeyStoreError(f"cannot open the key store {self.path}: {exc}") from exc
        self._connection = connection

    def _close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with self._lock:
            connection = self._connection
            if connection is None:
                raise KeyStoreError("the key store is not open")
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield _SqliteTx(connection)
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                raise KeyStoreError(f"key store {self.path}: {exc}") from exc
