"""JobStores from a config file, and the indexes a results store needs.

The config file is jobflow's store format (what ``~/.jobflow.yaml`` holds
under ``JOB_STORE``, and a jobflow-remote project under ``jobstore``)::

    docs_store:
      type: MongoStore
      host: mongo.example.org
      port: 27017
      database: sevenomni
      collection_name: outputs
      username: sevenomni
      password: ...
    additional_stores:
      data:                     # phonon bands, force constants, ...
        type: GridFSStore       # or S3Store
        ...
      results:                  # one current document per calculation
        type: MongoStore
        collection_name: results
        key: key
        ...

A file with a top-level ``JOB_STORE`` key (a jobflow settings file) works too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import yaml
from jobflow import JobStore

__all__ = [
    "INDEXED",
    "StoreConfigError",
    "ensure_indexes",
    "job_store_at",
    "job_store_from_file",
]

#: Identity fields indexed in every results store (plans filter on them);
#: the caller adds the summary fields of the properties.
INDEXED: Final[tuple[str, ...]] = (
    "key",
    "structure_id",
    "state",
    "property",
    "formula",
    "label",
)


class StoreConfigError(ValueError):
    """A store config file that cannot be used; the message names the file."""


def job_store_from_file(path: str | os.PathLike) -> JobStore:
    """The JobStore a config file describes (not connected yet).

    Raises
    ------
    StoreConfigError
        If the file is missing, not YAML/JSON, lacks ``docs_store`` or a
        ``data`` store, or names an unknown store type.
    """
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except OSError as err:
        raise StoreConfigError(f"{path}: cannot read the store config: {err}") from err
    except yaml.YAMLError as err:
        raise StoreConfigError(f"{path}: not valid YAML: {err}") from err
    if isinstance(spec, dict) and "JOB_STORE" in spec:
        spec = spec["JOB_STORE"]
    if not isinstance(spec, dict) or "@class" in spec:
        if isinstance(spec, dict):  # a monty-serialised JobStore
            return JobStore.from_file(path)
        raise StoreConfigError(f"{path}: the store config must be a mapping")
    if "docs_store" not in spec:
        raise StoreConfigError(
            f"{path}: no 'docs_store' key (see workflows/cluster/store_mongo.yaml)"
        )
    extra = spec.get("additional_stores") or {}
    if "data" not in extra:
        raise StoreConfigError(
            f"{path}: additional_stores.data is missing: phonon and adsorption "
            "jobs put bulky outputs there (a GridFSStore or S3Store)"
        )
    if "results" not in extra:
        raise StoreConfigError(
            f"{path}: additional_stores.results is missing: one document per "
            "calculation goes there (a MongoStore with key: key)"
        )
    try:
        return JobStore.from_dict_spec(spec)
    except (KeyError, TypeError, ValueError) as err:
        raise StoreConfigError(f"{path}: invalid store config: {err!r}") from err


def job_store_at(where: str | os.PathLike) -> JobStore:
    """The JobStore at ``where`` (not connected yet): a MongoDB URI
    (``mongodb://``, ``mongodb+srv://``), a store config file (``.yaml``,
    ``.yml``, ``.json``; see :func:`job_store_from_file`), or else a folder
    holding the embedded store."""
    from .embedded import embedded_job_store, mongo_job_store

    text = str(where)
    if text.startswith(("mongodb://", "mongodb+srv://")):
        return mongo_job_store(text)
    if text.endswith((".yaml", ".yml", ".json")):
        return job_store_from_file(text)
    return embedded_job_store(where)


def ensure_indexes(store: JobStore, fields: Iterable[str] = ()) -> list[str]:
    """Index :data:`INDEXED` and ``fields`` of a MongoDB results store
    (idempotent).

    Other stores (the embedded one, in-memory ones) are left alone.  Returns
    the indexed keys.
    """
    from maggma.stores import MongoStore, MontyStore

    results = store.additional_stores.get("results")
    if not isinstance(results, MongoStore) or isinstance(results, MontyStore):
        return []  # MontyDB has no index_information
    wanted = dict.fromkeys([*INDEXED, *fields])
    indexed = [key for key in wanted if results.ensure_index(key)]
    results.ensure_index("key", unique=True)
    return indexed
