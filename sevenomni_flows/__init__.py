"""sevenomni_flows: jobflow Makers for screening with SevenNet models.

Every property Maker of the registry is exported here.

>>> from sevenomni_flows import RelaxMaker, ElasticMaker, PhononMaker, EosMaker

Stored results are read back with :func:`open_results` (see
:mod:`sevenomni_flows.reader`).

The names are imported on first use, so that ``import sevenomni_flows`` (and
the command line, which lives in it) does not import every Maker.
"""

from typing import TYPE_CHECKING

from sevenomni_core._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and the API docs; imported on first use
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
    from .properties.gruneisen import GruneisenMaker
    from .properties.vacancy import VacancyMaker
    from .reader import open_results
    from .stores import embedded_job_store, mongo_job_store

__all__ = [
    "ElasticMaker",
    "EosMaker",
    "GruneisenMaker",
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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **{name: ".properties" for name in __all__ if name.endswith("Maker")},
        "GruneisenMaker": ".properties.gruneisen",
        "VacancyMaker": ".properties.vacancy",
        "ModelSettings": ".jobs",
        "open_results": ".reader",
        "embedded_job_store": ".stores",
        "mongo_job_store": ".stores",
    },
    __all__,
)
