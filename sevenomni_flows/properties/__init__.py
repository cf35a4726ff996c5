"""Properties: one module (or small package) per property.

Each holds its Maker, its document and its property-specific physics; the
framework they share (the job boundary, the registry, model settings)
lives in :mod:`sevenomni_flows.jobs`.  Importing this package imports every
module in it, so that each Maker registers itself (see
:mod:`~sevenomni_flows.jobs.registry`): a new property is one new module
here, and nothing else to edit.
"""

import importlib
import pkgutil

from .adsorption import MofAdsorptionMaker, SlabAdsorptionMaker
from .elastic import ElasticMaker
from .eos import EosMaker
from .md import MDMaker
from .neb import NebMaker
from .phonon import PhononMaker
from .qha import QhaMaker
from .relax import RelaxMaker, StaticMaker
from .slab_convergence import SlabConvergenceMaker
from .stability import StabilityMaker
from .surface_energy import SurfaceEnergyMaker
from .thermal_conductivity import ThermalConductivityMaker
from .widom import WidomMaker

# the modules above register first (the registry's order is theirs); any
# other module of this package registers here, in name order
for module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{module.name}")

__all__ = [
    "ElasticMaker",
    "EosMaker",
    "MDMaker",
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
]
