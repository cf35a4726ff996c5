"""Reference energies of adsorbates: gas-phase molecules or atomic references."""

from __future__ import annotations

from collections import Counter

from .adsorbates import Adsorbate

__all__ = ["OC20_RPBE", "SCHEMES", "atomic_references", "needed_molecules", "reference"]

#: Published OC20 atomic references (RPBE), for the ``oc20`` task only (eV).
OC20_RPBE = {"H": -3.477, "O": -7.204, "C": -7.282, "N": -8.083}

SCHEMES = ("gas", "oc20")

#: Molecule from which each element's atomic reference is derived.
_SOURCES = {"H": ("H2",), "O": ("H2O", "H2"), "C": ("CO", "H2O", "H2"), "N": ("N2",)}


def needed_molecules(adsorbates: list[Adsorbate], scheme: str, task: str | None) -> set:
    """Gas molecules to relax for these adsorbates under ``scheme``."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown reference scheme {scheme!r}; use one of {SCHEMES}")
    needed = set()
    for ads in adsorbates:
        if scheme == "gas" and ads.is_gas:
            needed.add(ads.name)
        elif not (scheme == "oc20" and task == "oc20"):
            for el in set(ads.atoms.get_chemical_symbols()):
                if el not in _SOURCES:
                    raise ValueError(f"no atomic reference for element {el}")
                needed.update(_SOURCES[el])
    return needed


def atomic_references(molecules: dict[str, float]) -> dict[str, float]:
    """Atomic references from the model's molecule energies (eV).

    ``H = E(H2)/2``, ``O = E(H2O) - E(H2)``, ``C = E(CO) - O``, ``N = E(N2)/2``
    (the OC20 construction, with this model's energies).
    """
    ref = {}
    if "H2" in molecules:
        ref["H"] = molecules["H2"] / 2
    if "H2O" in molecules and "H" in ref:
        ref["O"] = molecules["H2O"] - 2 * ref["H"]
    if "CO" in molecules and "O" in ref:
        ref["C"] = molecules["CO"] - ref["O"]
    if "N2" in molecules:
        ref["N"] = molecules["N2"] / 2
    return ref


def reference(
    ads: Adsorbate, scheme: str, molecules: dict[str, float], task: str | None
) -> tuple[float, str]:
    """The reference energy of ``ads`` (eV) and how it was obtained."""
    if scheme == "gas" and ads.is_gas:
        return molecules[ads.name], f"gas-phase {ads.name} (same model and task)"
    if scheme == "oc20" and task == "oc20":
        eps, origin = OC20_RPBE, "published OC20 RPBE atomic references"
    else:
        eps, origin = (
            atomic_references(molecules),
            ("atomic references from this model's H2, H2O, CO, N2"),
        )
    counts = Counter(ads.atoms.get_chemical_symbols())
    return sum(n * eps[el] for el, n in counts.items()), origin
