"""The results store: one current document per calculation, by reuse key.

A JobStore's ``results`` additional store holds one summary document per
planned calculation, keyed by its reuse key (``key``) and replaced when the
calculation is rerun.  Jobs write to it as they produce documents (a
batched relaxation as each structure finishes), so a killed run keeps what
was done; the JobStore's own documents (one per job, holding the batch's
list) are the history.  Bulky fields (band structures, force constants) stay
in the ``data`` store, reachable through ``job_uuid``.

``sevenomni query`` filters this store the MongoDB way, without prefixes:
``{"property": "eos", "b0": {"$gt": 150}}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from maggma.core import Store
from monty.json import jsanitize

__all__ = ["RESULTS", "Publisher", "lookup", "results_store", "serialize"]

#: Name of the additional store of a JobStore that holds the results.
RESULTS: Final[str] = "results"
#: Fields left out of the results store (they stay in the data store).
HEAVY: Final[tuple[str, ...]] = (
    "band_structure",
    "force_constants",
    "relaxed_structures",
)
#: Keys per query when looking many up at once.
CHUNK: Final[int] = 5000


def results_store(job_store, where: str = "the store") -> Store:
    """The ``results`` store of a JobStore, or an error saying how to add one."""
    store = job_store.additional_stores.get(RESULTS)
    if store is None:
        raise ValueError(
            f"{where} has no '{RESULTS}' additional store: add one keyed by "
            "'key' (e.g. a MongoStore with key: key, collection_name: results) "
            "beside 'data'; see workflows/cluster/store_mongo.yaml"
        )
    return store


def serialize(doc: Any, job_uuid: str | None = None) -> dict:
    """A document as stored in the results store (heavy fields left out)."""
    data = jsanitize(doc, strict=True, allow_bson=True, enum_values=True)
    for name in HEAVY:
        data.pop(name, None)
    data["job_uuid"] = job_uuid
    data["updated_at"] = datetime.now(UTC).isoformat()
    return data


def lookup(store: Store, keys: Iterable[str], properties=None) -> dict[str, dict]:
    """Stored documents by reuse key (a few queries for many keys).

    On MongoDB, ``$in`` queries on the indexed ``key``.  MontyDB evaluates
    ``$in`` in Python against every key for every document (quadratic), so
    the embedded store is read in one pass and matched against a set.
    """
    from maggma.stores import MontyStore

    keys = list(dict.fromkeys(keys))
    found: dict[str, dict] = {}
    if not keys:
        return found
    if isinstance(store, MontyStore):
        wanted = set(keys)
        fields = None if properties is None else list({"key", *properties})
        for doc in store.query({}, properties=fields):
            if doc.get("key") in wanted:
                found[doc["key"]] = doc
        return found
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        for doc in store.query({"key": {"$in": chunk}}, properties=properties):
            found[doc["key"]] = doc
    return found


class Publisher:
    """Writes documents to the running job's results store, in bursts.

    Documents are buffered and written every ``interval`` seconds (and on
    :meth:`add` with ``flush=True``), so that a long batched job stores its
    finished work as it goes without a database round trip per structure.
    Outside a job, or on a store without ``results``, it does nothing.
    """

    #: Seconds between writes.
    INTERVAL: float = 2.0

    def __init__(self, store: Store | None, job_uuid: str | None, interval=None):
        self.store = store
        self.job_uuid = job_uuid
        self.interval = self.INTERVAL if interval is None else interval
        self._buffer: list[dict] = []
        self._last = time.monotonic()

    @classmethod
    def current(cls) -> Publisher:
        """The publisher of the job now running (a no-op outside jobflow)."""
        from jobflow import CURRENT_JOB

        job_store = CURRENT_JOB.store
        store = None if job_store is None else job_store.additional_stores.get(RESULTS)
        uuid = None if CURRENT_JOB.job is None else CURRENT_JOB.job.uuid
        return cls(store, uuid)

    def add(self, docs: Iterable[Any], flush: bool = False) -> None:
        """Queue documents; write the queue if due (or ``flush``)."""
        if self.store is None:
            return
        self._buffer += [serialize(d, self.job_uuid) for d in docs]
        if flush or time.monotonic() - self._last >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write the queued documents (replacing those of the same key)."""
        if self.store is not None and self._buffer:
            if self.store.key != "key":  # e.g. jobflow-remote's file stores
                for doc in self._buffer:
                    doc[self.store.key] = doc["key"]
            self.store.update(self._buffer, key="key")
            self._buffer = []
        self._last = time.monotonic()
