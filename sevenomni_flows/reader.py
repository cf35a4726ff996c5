"""Stored results, read back: documents whose bulky fields load on demand.

>>> from sevenomni_flows import open_results
>>> results = open_results("results")  # doctest: +SKIP
>>> for r in results.find({"property": "qha"}):  # doctest: +SKIP
...     print(r["label"], r["volume_300k"], len(r["heat_capacity"]))

A results store holds one summary document per calculation (see
:mod:`sevenomni_flows.stores.results`); its bulky fields (force constants,
NEB images, adsorbate configurations, Widom's top poses) stay in the
JobStore's ``data`` store, behind the ``job_uuid`` of the job that made
them.  A :class:`Result` reads them from there the first time they are
asked for, and gives every structure-typed field as a pymatgen
``Structure`` (or a list of them).
"""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

__all__ = [
    "IDENTITY",
    "Result",
    "Results",
    "check_fields",
    "known_fields",
    "open_results",
    "structure_fields",
]

#: Fields every :class:`Result` carries whatever ``fields`` asked for.
IDENTITY: Final[tuple[str, ...]] = (
    "label",
    "labels",
    "formula",
    "property",
    "state",
    "key",
    "job_uuid",
)


def _holds_structure(annotation: Any) -> bool:
    from pymatgen.core import Structure

    if annotation is Structure:
        return True
    return any(_holds_structure(a) for a in typing.get_args(annotation))


def structure_fields(document: type) -> tuple[str, ...]:
    """The fields of a document class typed ``Structure`` (alone, optional
    or in a list), in declaration order.

    >>> from sevenomni_flows.properties.neb import NebDocument
    >>> structure_fields(NebDocument)
    ('input_structure', 'images')
    """
    return tuple(
        name
        for name, info in document.model_fields.items()
        if _holds_structure(info.annotation)
    )


def known_fields() -> dict[str, list[str]]:
    """Every stored field name, with the properties whose documents have it."""
    from .jobs.registry import documents

    found: dict[str, list[str]] = {"job_uuid": [], "updated_at": []}
    for prop, cls in documents().items():
        for name in cls.model_fields:
            found.setdefault(name, []).append(prop)
    return found


def check_fields(names: list[str]) -> None:
    """Raise ValueError naming each unknown field (a dotted name is checked
    by its first part: ``model.task``), with the closest known names."""
    known = known_fields()
    bad = [n for n in names if n.split(".")[0] not in known]
    if not bad:
        return
    lines = []
    for name in bad:
        close = difflib.get_close_matches(name, list(known), n=4, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        lines.append(f"unknown field {name!r}{hint}")
    raise ValueError(
        "; ".join(lines) + ". Fields are those of the property documents; "
        "see docs/screening.md"
    )


class Result(Mapping[str, Any]):
    """One stored document, read as a mapping of its fields.

    Summary fields come from the results store at once; a bulky field is
    read from the data store the first time it is asked for (None when the
    job that made it stored no output, e.g. one that was killed).
    Structure-typed fields are pymatgen ``Structure`` objects.
    """

    def __init__(self, doc: dict, results: Results):
        self._doc = {k: v for k, v in doc.items() if k != "_id"}
        self._results = results
        self._loaded: dict[str, Any] = {}

    @property
    def document_class(self) -> type | None:
        """The document class of this result's property (None if unknown)."""
        from .jobs.registry import documents

        return documents().get(self._doc.get("property"))

    def _bulky(self) -> tuple[str, ...]:
        from .schemas import bulky_fields

        cls = self.document_class
        return bulky_fields([cls]) if cls is not None else ()

    def _structural(self) -> tuple[str, ...]:
        cls = self.document_class
        return structure_fields(cls) if cls is not None else ()

    def __getitem__(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        if name in self._doc:
            value = self._doc[name]
        elif name in self._bulky():
            value = self._results.bulky(self._doc.get("job_uuid"), self.key, name)
        else:
            raise KeyError(name)
        if value is not None and name in self._structural():
            value = _as_structures(value)
        self._loaded[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._doc, *self._bulky()]))

    def __len__(self) -> int:
        return len(list(iter(self)))

    def __repr__(self) -> str:
        return (
            f"Result({self._doc.get('label')!r}, {self._doc.get('property')!r}, "
            f"key={self.key!r})"
        )

    @property
    def key(self) -> str | None:
        """The reuse key: the document's identity."""
        return self._doc.get("key")

    def structures(self) -> dict[str, list]:
        """Every structure of this result, by field, each as a list (a
        relaxed cell is a list of one; NEB images keep their order).

        Lists may hold None where a placement failed.
        """
        out = {}
        for name in self._structural():
            value = self.get(name)
            if value is None:
                continue
            value = value if isinstance(value, list) else [value]
            if any(v is not None for v in value):
                out[name] = value
        return out

    def document(self):
        """The whole pydantic document, bulky fields loaded."""
        cls = self.document_class
        if cls is None:
            raise ValueError(f"no document class for property {self['property']!r}")
        return cls.model_validate({name: self[name] for name in self})


def _as_structures(value: Any) -> Any:
    from pymatgen.core import Structure

    if isinstance(value, list):
        return [_as_structures(v) for v in value]
    if isinstance(value, dict):
        return Structure.from_dict(value)
    return value


class Results:
    """A results store opened for reading (see :func:`open_results`)."""

    def __init__(self, job_store, where: str = "the store"):
        from .stores.results import results_store

        self.job_store = job_store
        self.where = where
        self.store = results_store(job_store, where)
        self._outputs: dict[str, dict[str, dict]] = {}  # job -> key -> output
        self._blobs: dict[tuple[str, str], Any] = {}  # (key, field) -> value
        self._selected: set[tuple] = set()  # (job_uuid, key) of the last find

    def find(
        self, filter: dict | None = None, fields: list[str] | None = None
    ) -> Iterator[Result]:
        """The stored results matching a Mongo-style filter, sorted by label
        and property.

        Parameters
        ----------
        filter : dict, optional
            As for ``sevenomni query``: ``{"property": "eos", "b0": {"$gt":
            100}}``; ``label`` matches any name a calculation was asked by.
        fields : list of str, optional
            Read only these fields (and :data:`IDENTITY`) from the results
            store; bulky ones still load on demand.  Default: all.

        Raises
        ------
        ValueError
            For an unknown field (naming it and the close matches) or a
            query operator that is not one.
        """
        from .summary import to_mongo_filter

        criteria = to_mongo_filter(filter or {})
        properties = None
        if fields is not None:
            check_fields(list(fields))
            properties = list(dict.fromkeys([*IDENTITY, *fields]))
        docs = list(self.store.query(criteria, properties=properties))
        docs.sort(key=lambda d: (str(d.get("label")), str(d.get("property"))))
        self._selected = {(d.get("job_uuid"), d.get("key")) for d in docs}
        return iter([Result(d, self) for d in docs])

    def bulky(self, job_uuid: str | None, key: str | None, name: str) -> Any:
        """A bulky field of the document ``key`` made by job ``job_uuid``,
        from the data store (None when that job stored no output).

        The first time a field is asked for, it is read for every result of
        the last :meth:`find` at once: a few queries, not one per result
        (the embedded store has no index, and reads every blob per query).
        """
        if job_uuid is None:
            return None
        if (key, name) not in self._blobs:
            self._fetch(name, self._selected | {(job_uuid, key)})
        return self._blobs[(key, name)]

    def _fetch(self, name: str, wanted: set[tuple]) -> None:
        """Read field ``name`` of the (job_uuid, key) documents ``wanted``."""
        from .stores.results import CHUNK

        wanted = {(j, k) for j, k in wanted if j and (k, name) not in self._blobs}
        jobs = sorted({j for j, _ in wanted} - set(self._outputs))
        for start in range(0, len(jobs), CHUNK):
            found = self.job_store.query(
                {"uuid": {"$in": jobs[start : start + CHUNK]}},
                properties=["output"],
                sort={"index": 1},  # the last run of a job wins
            )
            for job in found:
                output = job.get("output") or []
                docs = output if isinstance(output, list) else [output]
                self._outputs[job["uuid"]] = {
                    d.get("key"): d for d in docs if isinstance(d, dict)
                }
        for job in jobs:
            self._outputs.setdefault(job, {})  # no output: a killed job
        refs: dict[str, dict[str, str]] = {}  # store -> blob_uuid -> key
        for job, key in wanted:
            value = self._outputs.get(job, {}).get(key, {}).get(name)
            self._blobs[(key, name)] = value
            if isinstance(value, dict) and "blob_uuid" in value:
                store = value.get("store") or "data"
                refs.setdefault(store, {})[value["blob_uuid"]] = key
                self._blobs[(key, name)] = None  # until read
        for store_name, keys in refs.items():
            store = self.job_store.additional_stores[store_name]
            blobs = list(keys)
            for start in range(0, len(blobs), CHUNK):
                found = store.query(
                    {"blob_uuid": {"$in": blobs[start : start + CHUNK]}},
                    properties=["blob_uuid", "data"],
                )
                for blob in found:
                    self._blobs[(keys[blob["blob_uuid"]], name)] = blob.get("data")

    def close(self) -> None:
        """Close the store's connections."""
        self.job_store.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_results(where) -> Results:
    """Open a results store for reading.

    Parameters
    ----------
    where : str, path or JobStore
        A results folder (the embedded store ``sevenomni run`` writes), a
        MongoDB URI (``mongodb://...``), a jobflow store file (``.yaml``,
        ``.yml``, ``.json``), or a JobStore.

    Raises
    ------
    FileNotFoundError
        For a folder or file that does not exist.
    ValueError
        For a store without a ``results`` additional store.

    Examples
    --------
    >>> with open_results("results") as results:  # doctest: +SKIP
    ...     relaxed = [r["structure"] for r in results.find({"property": "relax"})]
    """
    from jobflow import JobStore

    from .stores import job_store_at

    if isinstance(where, JobStore):
        job_store, name = where, "the JobStore"
    else:
        name = str(where)
        if "://" not in name and not Path(os.fspath(where)).exists():
            raise FileNotFoundError(f"no results store at {name}")
        job_store = job_store_at(where)
    job_store.connect()
    return Results(job_store, name)
