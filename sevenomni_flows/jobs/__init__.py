"""Job Makers: one per calculation, parameterised by model and task.

Importing this package imports every property module, so that each Maker
registers itself (see :mod:`.registry`): a new property is one module here
and one import line below.
"""

from .adsorption import MofAdsorptionMaker, SlabAdsorptionMaker
from .base import ModelSettings
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
]
