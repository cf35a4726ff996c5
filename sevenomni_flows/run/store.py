"""Where a run keeps its results: a folder, a MongoDB URI or a store file."""

from __future__ import annotations

from pathlib import Path

from ..summary import indexed_fields

__all__ = ["open_store"]


def open_store(where: str | Path):
    """A connected JobStore from a folder (embedded), a MongoDB URI or a config file.

    A config file is jobflow's store format (see
    :func:`~sevenomni_flows.stores.job_store_from_file`).  MongoDB stores get
    indexes on the summary fields.
    """
    from ..stores import (
        embedded_job_store,
        ensure_indexes,
        job_store_from_file,
        mongo_job_store,
    )

    text = str(where)
    if text.startswith(("mongodb://", "mongodb+srv://")):
        store = mongo_job_store(text)
    elif text.endswith((".yaml", ".yml", ".json")):
        store = job_store_from_file(text)
    else:
        store = embedded_job_store(where)
    store.connect()
    ensure_indexes(store, indexed_fields())
    return store
