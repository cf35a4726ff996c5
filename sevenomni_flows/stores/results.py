"""The results store: one current document per calculation, by reuse key.

A JobStore's ``results`` additional store holds one summary document per
planned calculation, keyed by its reuse key (``key``) and replaced when the
calculation is rerun.  Jobs write to it as they produce documents (a
batched relaxation as each structure finishes), so a killed run keeps what
was done; the JobStore's own documents (one per job, holding the batch's
list) are the history.  Bulky fields (band structures, force constants, NEB
images: see :func:`~sevenomni_flows.schemas.bulky`) stay in the ``data``
store, reachable through ``job_uuid``.

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

from ..schemas import bulky_fields

__all__ = ["RESULTS", "Publisher", "lookup", "replace", "results_store", "serialize"]

#: Name of the additional store of a JobStore that holds the results.
RESULTS: Final[str] = "results"
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
    """A document as stored in the results store (bulky fields left out)."""
    data = jsanitize(doc, strict=True, allow_bson=True, enum_values=True)
    for name in bulky_fields():
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
    keys = list(dict.fromkeys(keys))
    found: dict[str, dict] = {}
    if not keys:
        return found
    if _embedded(store):
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
        self._stored: set[str] | None = None  # keys in an embedded store

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
        """Write the queued documents (replacing those of the same key).

        After a write that had to replace documents of an embedded store (a
        pass over it), the next waits at least ten times as long as this one
        took, so that writing costs at most a tenth of a job's time.
        """
        start = time.monotonic()
        if self.store is not None and self._buffer:
            if self.store.key != "key":  # e.g. jobflow-remote's file stores
                for doc in self._buffer:
                    doc[self.store.key] = doc["key"]
            if self._stored is None and _embedded(self.store):
                self._stored = stored_keys(self.store)
            scanned = replace(self.store, self._buffer, self._stored)
            self._buffer = []
        else:
            scanned = False
        self._last = time.monotonic()
        if scanned:
            self.interval = max(self.interval, 10 * (self._last - start))


def _embedded(store: Store) -> bool:
    from maggma.stores import MontyStore

    return isinstance(store, MontyStore)


def replace(store: Store, docs: list[dict], stored: set[str] | None = None) -> bool:
    """Upsert ``docs`` by ``key`` (the last of a repeated key wins).

    MontyDB has no indexes: each of maggma's per-document ``replace_one``
    calls decodes the whole collection, quadratic in a long run.  On it, the
    old documents of these keys are deleted in one pass, and only if some
    exist, then the new ones are inserted at once.  ``stored``, the keys in
    the store (read once by the caller and kept up to date here), saves the
    pass when every key is new.  Returns whether a pass was made.
    """
    if not _embedded(store):
        store.update(docs, key="key")
        return False
    latest = {d["key"]: d for d in docs}
    collection = store._collection
    if stored is None:
        stored = stored_keys(store)
    old = [k for k in latest if k in stored]
    if old:
        collection.delete_many({"key": {"$in": old}})
    collection.insert_many(list(latest.values()))
    stored.update(latest)
    return bool(old)


def stored_keys(store: Store) -> set[str]:
    """Every reuse key in an embedded results store (one pass)."""
    if store._collection.find_one({}, {"_id": 1}) is None:  # no file yet
        return set()
    return {d["key"] for d in store._collection.find({}, {"key": 1}) if "key" in d}
