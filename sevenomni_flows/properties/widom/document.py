"""The Widom document: Henry coefficients and heats of adsorption."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pymatgen.core import Structure

from ...schemas import ResultDocument, bulky, quantity

__all__ = ["WidomDocument"]


class WidomDocument(ResultDocument):
    """Widom insertion of one guest in one framework: K_H(T) and Q_st(T)."""

    property: str = "widom"
    columns: ClassVar[tuple[str, ...]] = (
        "host",
        "guest",
        "temperature",
        "henry_coefficient",
        "heat_of_adsorption",
        "selectivity",
        "effective_insertions",
        "converged",
        "evaluations",
        "dispersion",
    )
    host: str = Field(description="The framework's name")
    guest: str = Field(description="The inserted molecule")
    temperature: list[float] = quantity(
        "Temperatures; the lists below follow them", "K", default_factory=list
    )
    dispersion: str | None = Field(None, description="D3 damping added, if any")
    henry_coefficient: list[float] | None = quantity("K_H per temperature", "mol/kg/Pa")
    henry_coefficient_error: list[float] | None = quantity(
        "Bootstrap standard error of K_H", "mol/kg/Pa"
    )
    heat_of_adsorption: list[float | None] | None = quantity(
        "Q_st at infinite dilution per temperature, positive when binding", "kJ/mol"
    )
    heat_of_adsorption_error: list[float | None] | None = quantity(
        "Bootstrap standard error of Q_st", "kJ/mol"
    )
    mean_energy: list[float | None] | None = quantity(
        "Boltzmann-weighted <ΔE> per temperature", "eV"
    )
    effective_insertions: list[float] | None = Field(
        None,
        description="Kish effective insertions (Σu)²/Σu² of the importance × "
        "Boltzmann weights per temperature; below 20 the averages are not "
        "converged",
    )
    sampling: str | None = Field(
        None, description="biased (mixture proposal near sites, reweighted) or uniform"
    )
    evaluations: int = Field(
        0, description="Model evaluations of insertions (overlaps cost none)"
    )
    converged: bool | None = Field(
        None,
        description="Whether K_H and Q_st reached their error targets (with "
        "enough effective insertions and a stable K_H) at every temperature",
    )
    unconverged_reason: str | None = Field(
        None, description="Why the sample is not converged (None when it is)"
    )
    history: list[dict] = Field(
        default_factory=list,
        description="Per round: evaluations, insertions, and per temperature "
        "K_H and its error (mol/kg/Pa), Q_st and its error (kJ/mol), effective "
        "insertions",
    )
    energy_floor: float | None = quantity(
        "ΔE below it is unphysical (zero weight): the lowest relaxed-site energy minus "
        "floor_kt k_B T",
        "eV",
    )
    site_energies: list[float] = quantity(
        "ΔE of the guest's sites relaxed with the model (framework fixed)",
        "eV",
        default_factory=list,
    )
    importance_weights: list[float] | None = quantity(
        "p_uniform/q of each accepted insertion, in the order of energies (1 for "
        "uniform sampling)",
        "unitless",
    )
    top_energies: list[float] = quantity(
        "ΔE of the top-weighted insertions at the first temperature, heaviest first",
        "eV",
        default_factory=list,
    )
    top_geometries: list[Structure] | None = bulky(
        "Framework + guest of the top-weighted insertions, heaviest first"
    )
    n_insertions: int = Field(0, description="Insertions made")
    n_overlapping: int = Field(0, description="Inside the hard core: zero weight")
    overlap_fraction: float | None = quantity("n_overlapping / n", "unitless")
    n_unphysical: int = Field(
        0, description="ΔE below energy_floor: zero weight, excluded as artefacts"
    )
    n_failed: int = Field(
        0,
        description="Insertions the model could not evaluate: left out of the "
        "averages (and their denominator); above 1% of evaluations the result "
        "is failed",
    )
    lowest_energy: float | None = quantity("Lowest accepted ΔE", "eV")
    framework_density: float | None = quantity("Framework density", "kg/m³")
    framework_energy: float | None = quantity(
        "Empty framework, the whole cell as computed", "eV"
    )
    guest_energy: float | None = quantity("Relaxed gas-phase guest", "eV")
    energies: list[float] | None = quantity("Accepted ΔE, in insertion order", "eV")
    selectivity: dict[str, list[float | None]] = quantity(
        "K_H of this guest over that of each other guest, per temperature",
        "unitless",
        default_factory=dict,
    )
    warnings: list[str] = Field(
        default_factory=list, description="What may make the result less reliable"
    )
