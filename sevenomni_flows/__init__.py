"""sevenomni_flows: jobflow Makers for screening with SevenNet models.

Every property Maker of the registry is exported here.

>>> from sevenomni_flows import RelaxMaker, ElasticMaker, PhononMaker, EosMaker

Stored results are read back with :func:`open_results` (see
:mod:`sevenomni_flows.reader`).
"""

from .jobs import ModelSettings
from .properties import (
    ElasticMaker,
    EosMaker,
    MDMaker,
    MofAdsorptionMaker,
    NebMaker,
    PhononMaker,
    QhaMaker,
    RelaxMaker,
    SlabAdsorptionMaker,
    SlabConvergenceMaker,
    StabilityMaker,
    StaticMaker,
    SurfaceEnergyMaker,
    ThermalConductivityMaker,
    WidomMaker,
)
from .properties.vacancy import VacancyMaker
from .reader import open_results
from .stores import embedded_job_store, mongo_job_store

__all__ = [
    "ElasticMaker",
    "EosMaker",
    "MDMaker",
    "ModelSettings",
    "MofAdsorptionMaker",
    "NebMaker",
    "PhononMaker",
    "QhaMaker",
    "RelaxMaker",
    "SlabAdsorptionMaker",
    "SlabConvergenceMaker",
    "StabilityMaker",
    "StaticMaker",
    "SurfaceEnergyMaker",
    "ThermalConductivityMaker",
    "VacancyMaker",
    "WidomMaker",
    "embedded_job_store",
    "mongo_job_store",
    "open_results",
]
