"""JobStores: the embedded default and MongoDB."""

from .embedded import embedded_job_store, mongo_job_store

__all__ = ["embedded_job_store", "mongo_job_store"]
