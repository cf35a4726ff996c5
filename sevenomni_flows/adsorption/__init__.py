"""Adsorption topic logic: adsorbates, slabs and sites, MOF guests, anomalies,
references.  Plain functions, used by the adsorption Makers and by tests."""

from .adsorbates import ADSORBATES, Adsorbate, get_adsorbate
from .anomalies import EXCLUDING, classify
from .references import SCHEMES, reference

__all__ = [
    "ADSORBATES",
    "EXCLUDING",
    "SCHEMES",
    "Adsorbate",
    "classify",
    "get_adsorbate",
    "reference",
]
