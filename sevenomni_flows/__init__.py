"""sevenomni_flows: jobflow Makers for screening with SevenNet models.

Every property Maker of the registry is exported here.

>>> from sevenomni_flows import RelaxMaker, ElasticMaker, PhononMaker, EosMaker

The names are imported on first use, so that ``import sevenomni_flows`` (and
the command line, which lives in it) does not import every Maker.
"""

from typing import TYPE_CHECKING

from sevenomni_core._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and the API docs; imported on first use
    from .jobs import (
        ElasticMaker,
        EosMaker,
        MDMaker,
        ModelSettings,
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
    "WidomMaker",
    "embedded_job_store",
    "mongo_job_store",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **{name: ".jobs" for name in __all__ if name.endswith(("Maker", "Settings"))},
        "embedded_job_store": ".stores",
        "mongo_job_store": ".stores",
    },
    __all__,
)
