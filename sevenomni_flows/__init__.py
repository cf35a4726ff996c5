"""sevenomni_flows: jobflow Makers for screening with SevenNet models.

>>> from sevenomni_flows import RelaxMaker, ElasticMaker, PhononMaker, EosMaker
"""

from .jobs import (
    ElasticMaker,
    EosMaker,
    ModelSettings,
    PhononMaker,
    RelaxMaker,
    StaticMaker,
)
from .stores import embedded_job_store, mongo_job_store

__all__ = [
    "ElasticMaker",
    "EosMaker",
    "ModelSettings",
    "PhononMaker",
    "RelaxMaker",
    "StaticMaker",
    "embedded_job_store",
    "mongo_job_store",
]
