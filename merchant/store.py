"""The merchant platform's SQLite store: one table per record type, each record as JSON under its ident;
WAL, ``synchronous=FULL``; a decision's records commit in one transaction."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Final

from acqkit.sqlitedb import open_durable, write_all
from merchant.model import RECORD_TYPES, MerchantBook, Record, from_json, to_json

SCHEMA: Final = "".join(
    f"CREATE TABLE IF NOT EXISTS {cls.table} (ident TEXT PRIMARY KEY, body TEXT NOT NULL);\n" for cls in RECORD_TYPES
)


class MerchantStoreError(Exception):
    """The merchant store cannot be opened, read or written."""


class MerchantStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._db = open_durable(self.path, SCHEMA)
        except sqlite3.Error as exc:
            raise MerchantStoreError(f"cannot open merchant store {self.path}: {exc}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def commit(self, records: tuple[Record, ...]) -> None:
        if not records:
            return
        with self._lock:
            rows = (
                (
                    f"INSERT OR REPLACE INTO {record.table} VALUES (?, ?)",  # noqa: S608 - the table's name is from code
                    (record.ident, json.dumps(to_json(record))),
                )
                for record in records
            )
            try:
                write_all(self._db, rows)
            except sqlite3.Error as exc:
                raise MerchantStoreError(f"cannot write merchant store {self.path}: {exc}") from None

    def load(self) -> MerchantBook:
        book = MerchantBook()
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    for cls in RECORD_TYPES:
                        for (body,) in self._db.execute(f"SELECT body FROM {cls.table}"):  # noqa: S608
                            book.apply((from_json(cls, json.loads(body)),))
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise MerchantStoreError(f"cannot read merchant store {self.path}: {exc}") from None
        return book
