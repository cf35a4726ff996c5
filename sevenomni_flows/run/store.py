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
    from ..stores import ensure_indexes, job_store_at

    store = job_store_at(where)
    store.connect()
    ensure_indexes(store, indexed_fields())
    return store
