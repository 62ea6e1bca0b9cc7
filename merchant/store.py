"""The merchant platform's SQLite store: one table per record type, each record as JSON under its ident;
WAL, ``synchronous=FULL``; a decision's records commit in one transaction."""

from __future__ import annotations

import json
import sqlite3
from typing import Final

from acqkit.sqlitedb import DurableStore
from merchant.model import RECORD_TYPES, MerchantBook, Record, from_json, to_json

SCHEMA: Final = "".join(
    f"CREATE TABLE IF NOT EXISTS {cls.table} (ident TEXT PRIMARY KEY, body TEXT NOT NULL);\n" for cls in RECORD_TYPES
)


class MerchantStoreError(Exception):
    """The merchant store cannot be opened, read or written."""


class MerchantStore(DurableStore):
    kind = "merchant store"
    schema = SCHEMA
    error = MerchantStoreError

    def commit(self, records: tuple[Record, ...]) -> None:
        if records:
            self.write(
                (
                    f"INSERT OR REPLACE INTO {record.table} VALUES (?, ?)",  # noqa: S608 - the table's name is from code
                    (record.ident, json.dumps(to_json(record))),
                )
                for record in records
            )

    def load(self) -> MerchantBook:
        return self.read(_load)


def _load(db: sqlite3.Connection) -> MerchantBook:
    book = MerchantBook()
    db.execute("BEGIN")
    try:
        for cls in RECORD_TYPES:
            for (body,) in db.execute(f"SELECT body FROM {cls.table}"):  # noqa: S608
                book.apply((from_json(cls, json.loads(body)),))
    finally:
        db.execute("COMMIT")
    return book
