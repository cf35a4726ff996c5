"""Result stores: an embedded on-disk default, MongoDB for clusters.

The embedded store is maggma's :class:`~maggma.stores.MontyStore` (MontyDB
on SQLite) in a folder: it needs no server and is queried the MongoDB way.
Its limits: one writer at a time.  Two runs writing to the same folder at
once serialise on SQLite's lock and may fail with "database is locked";
give each concurrent run its own folder, or use MongoDB.  Reads while a run
writes are safe.
"""

from __future__ import annotations

import os
from pathlib import Path

from jobflow import JobStore
from maggma.stores import GridFSStore, MongoStore, MontyStore

__all__ = ["embedded_job_store", "mongo_job_store"]


def embedded_job_store(folder: str | os.PathLike) -> JobStore:
    """A JobStore on disk under ``folder``: documents, ``data`` and ``results``."""
    path = Path(folder).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    docs = MontyStore("outputs", database_path=str(path), database_name="sevenomni")
    data = MontyStore(
        "outputs_data", database_path=str(path), database_name="sevenomni"
    )
    results = MontyStore(
        "results", database_path=str(path), database_name="sevenomni", key="key"
    )
    return JobStore(docs, additional_stores={"data": data, "results": results})


def mongo_job_store(uri: str, database: str = "sevenomni") -> JobStore:
    """A JobStore on MongoDB: documents, results (by key) and GridFS for data."""
    docs = MongoStore(database=database, collection_name="outputs", uri=uri)
    data = GridFSStore(database=database, collection_name="outputs_data", uri=uri)
    results = MongoStore(
        database=database, collection_name="results", uri=uri, key="key"
    )
    return JobStore(docs, additional_stores={"data": data, "results": results})
