"""JobStores: the embedded default, MongoDB, and stores from a config file."""

from .config import (
    INDEXED,
    StoreConfigError,
    ensure_indexes,
    job_store_at,
    job_store_from_file,
)
from .embedded import embedded_job_store, mongo_job_store

__all__ = [
    "INDEXED",
    "StoreConfigError",
    "embedded_job_store",
    "ensure_indexes",
    "job_store_at",
    "job_store_from_file",
    "mongo_job_store",
]
