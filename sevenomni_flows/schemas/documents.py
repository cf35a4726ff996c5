"""Result documents of the property workflows (units in every description)."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, Field
from pymatgen.core import Structure

from .fields import bulky, quantity
from .provenance import Provenance

__all__ = [
    "TRANSIENT_ERRORS",
    "AdsorptionDocument",
    "ElasticDocument",
    "EosDocument",
    "MDDocument",
    "NebDocument",
    "PhononDocument",
    "RelaxDocument",
    "ResultDocument",
    "SlabConvergenceDocument",
    "State",
    "StaticDocument",
    "WidomDocument",
    "failure_type",
    "is_transient",
]


#: Outcome of a planned calculation.
State = Literal["completed", "failed", "skipped"]
#: Failure types a rerun may fix (the machine, not the calculation): out of
#: memory, a timeout, a lost connection, an interruption.  A rerun retries
#: them; it keeps every other failure (bad input, a guard, divergence, an
#: unconverged inner step, a plain RuntimeError) unless asked to retry failures.
TRANSIENT_ERRORS = frozenset(
    {
        "OutOfMemoryError",  # torch's (CUDA)
        "MemoryError",
        "TimeoutError",
        "ConnectionError",
        "BrokenPipeError",
        "ConnectionAbortedError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "InterruptedError",
        "KeyboardInterrupt",
    }
)
#: How an accelerator's out-of-memory reads when raised as a RuntimeError
#: ("CUDA out of memory", "CUDA error: out of memory", "MPS backend out of
#: memory", cuBLAS failing to allocate).
_OUT_OF_MEMORY = re.compile(r"out of memory|CUBLAS_STATUS_ALLOC_FAILED", re.IGNORECASE)


def is_transient(error_type: str | None, message: str | None) -> bool:
    """Whether a failure is the machine's (a rerun may succeed).

    Parameters
    ----------
    error_type : str or None
        The exception's type name, e.g. ``"RuntimeError"``.
    message : str or None
        Its message: a ``RuntimeError`` is transient only when it says the
        accelerator ran out of memory; any other is deterministic.

    Examples
    --------
    >>> is_transient("RuntimeError", "CUDA error: out of memory")
    True
    >>> is_transient("RuntimeError", "displaced supercell 3 failed")
    False
    """
    if error_type in TRANSIENT_ERRORS:
        return True
    return error_type == "RuntimeError" and bool(_OUT_OF_MEMORY.search(message or ""))


def failure_type(error: str) -> str:
    """The error type of a structure whose prediction failed with ``error``:
    ``OutOfMemoryError`` (transient: a rerun with more memory may succeed)
    when it ran out of memory, else ``InvalidStructureError``.

    >>> failure_type("out of memory for this structure alone")
    'OutOfMemoryError'
    """
    if _OUT_OF_MEMORY.search(error):
        return "OutOfMemoryError"
    return "InvalidStructureError"


class ResultDocument(BaseModel):
    """Fields every result carries (and ``sevenomni query`` filters on).

    Every planned calculation ends in exactly one current document, found by
    its ``key``: ``completed``, ``failed`` (with ``error`` and
    ``error_type``) or ``skipped`` (``error`` says what it waited for).
    """

    formula: str = Field(description="Reduced formula of the material")
    structure_id: str = Field(description="Hash of the material's input structure")
    label: str | None = Field(
        None, description="Where the material came from, e.g. 'structures.extxyz[17]'"
    )
    labels: list[str] = Field(
        default_factory=list,
        description="Every name that asked for this calculation (identical "
        "inputs under several names, renamed entries); queries on label match "
        "any of them",
    )
    sources: list[str] = Field(
        default_factory=list,
        description="Where the input came from: file paths with [frame], or "
        "the bulk builder",
    )
    property: str = Field(description="What was computed: relax, static, eos, ...")
    model: Provenance = Field(description="Model, checkpoint, task and versions")
    state: State = Field(description="completed, failed or skipped")
    error: str | None = Field(None, description="Why it failed or was skipped")
    error_type: str | None = Field(
        None, description="Exception type of a failure, e.g. ValueError"
    )
    transient: bool | None = Field(
        None,
        description="Failures: whether a rerun may succeed (out of memory, a "
        "timeout, a lost connection, an interruption); reruns keep the others "
        "unless asked to retry",
    )
    input_structure: Structure | None = Field(
        None, description="The structure computed on (relaxed, for properties)"
    )
    key: str = Field(description="Reuse key: hash of the protocol below")
    protocol: dict = Field(
        default_factory=dict,
        description="What the key contains: property, model_sha256, task, dtype, "
        "settings, and 'on' (the input structure id, or the key of the "
        "relaxation the property was computed on)",
    )
    plots: list[str] = Field(default_factory=list, description="Paths of PNG plots")

    #: Summary columns of this property in ``sevenomni query`` tables.
    columns: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def failed(
        cls,
        identity: dict,
        model: Provenance,
        error: BaseException | str,
        error_type: str | None = None,
        **values,
    ) -> ResultDocument:
        """The failed document of a calculation (the one place they are made).

        Parameters
        ----------
        identity : dict
            Its identity fields (formula, structure_id, label, property, key,
            protocol, ...).
        model : Provenance
            The model it ran on.
        error : exception or str
            What went wrong; an exception also gives its type.
        error_type : str, optional
            The failure's type (default: the exception's).
        **values
            Fields of the property known despite the failure.
        """
        if isinstance(error, BaseException):
            error_type = error_type or type(error).__name__
            error = str(error) or type(error).__name__
        return cls(
            **identity,
            model=model,
            state="failed",
            error=error,
            error_type=error_type,
            transient=is_transient(error_type, error),
            **values,
        )


class StaticDocument(ResultDocument):
    """Energy, forces and stress of one structure."""

    property: str = "static"
    columns: ClassVar[tuple[str, ...]] = ("energy_per_atom",)
    energy: float | None = quantity(
        "Total energy of the whole input cell (per atom: energy_per_atom)", "eV"
    )
    energy_per_atom: float | None = quantity("Energy per atom", "eV/atom")
    forces: list[list[float]] | None = Field(None, description="Forces, eV/Å")
    stress: list[float] | None = Field(
        None, description="Stress, GPa, Voigt order xx yy zz yz xz xy, tensile positive"
    )


class RelaxDocument(ResultDocument):
    """A relaxed structure."""

    property: str = "relax"
    columns: ClassVar[tuple[str, ...]] = (
        "energy_per_atom",
        "volume_per_atom",
        "converged",
        "steps",
    )
    structure: Structure | None = Field(None, description="The relaxed structure")
    energy: float | None = quantity(
        "Final total energy of the whole cell (per atom: energy_per_atom)", "eV"
    )
    energy_per_atom: float | None = quantity("Final energy", "eV/atom")
    volume_change: float | None = quantity("Final over initial volume", "unitless")
    volume_per_atom: float | None = quantity("Final volume", "Å³/atom")
    converged: bool = Field(False, description="Whether fmax was reached")
    steps: int = Field(0, description="Optimiser steps taken")
    max_force: float | None = Field(None, description="Largest final force, eV/Å")
    fmax: float | None = Field(None, description="Convergence threshold, eV/Å")
    relax_cell: bool | None = Field(None, description="Whether the cell was relaxed")


class EosDocument(ResultDocument):
    """An equation-of-state fit E(V)."""

    property: str = "eos"
    columns: ClassVar[tuple[str, ...]] = ("v0", "b0", "e0")
    eos: str | None = Field(None, description="EOS fitted (pymatgen name)")
    volumes: list[float] = Field(default_factory=list, description="Volumes, Å³/atom")
    energies: list[float] = Field(default_factory=list, description="Energies, eV/atom")
    v0: float | None = quantity("Equilibrium volume", "Å³/atom")
    b0: float | None = quantity("Bulk modulus", "GPa")
    b1: float | None = quantity("Pressure derivative of B", "unitless")
    e0: float | None = quantity("Minimum energy", "eV/atom")
    max_steps_reached: int = Field(
        0, description="Scaled cells whose relaxation did not converge"
    )


class ElasticDocument(ResultDocument):
    """The elastic tensor and its Voigt-Reuss-Hill moduli."""

    property: str = "elastic"
    columns: ClassVar[tuple[str, ...]] = (
        "elastic_tensor",
        "bulk_modulus_vrh",
        "shear_modulus_vrh",
    )
    elastic_tensor: list[list[float]] | None = Field(
        None, description="Elastic tensor, GPa, 6x6 Voigt (xx yy zz yz xz xy)"
    )
    bulk_modulus_vrh: float | None = quantity("Bulk modulus K_VRH", "GPa")
    shear_modulus_vrh: float | None = quantity("Shear modulus G_VRH", "GPa")
    strain_magnitudes: list[float] = Field(
        default_factory=list, description="Applied strains, unitless"
    )
    strains: list[list[float]] | None = Field(
        None, description="Voigt strain of each deformed cell, unitless"
    )
    stresses: list[list[float]] | None = Field(
        None,
        description="Stress of each deformed cell, GPa, Voigt (xx yy zz yz xz xy), "
        "tensile positive; the fit can be redone from these",
    )
    max_steps_reached: int = Field(
        0, description="Deformed cells whose relaxation did not converge"
    )


class PhononDocument(ResultDocument):
    """Harmonic phonons from finite displacements (phonopy)."""

    property: str = "phonon"
    columns: ClassVar[tuple[str, ...]] = (
        "has_imaginary_modes",
        "max_frequency",
        "free_energy_300k",
    )
    supercell_matrix: list[list[int]] | None = Field(
        None, description="Force-constant supercell, in the primitive cell's basis"
    )
    primitive_matrix: list[list[float]] | None = Field(
        None, description="Primitive cell (columns) in the input cell's basis"
    )
    displacement: float | None = Field(None, description="Displacement, Å")
    has_imaginary_modes: bool | None = Field(
        None, description="Any frequency below the tolerance (-0.05 THz)"
    )
    min_frequency: float | None = quantity("Lowest frequency", "THz")
    max_frequency: float | None = quantity("Highest frequency", "THz")
    gamma_frequencies: list[float] | None = Field(
        None, description="Frequencies at Gamma, THz"
    )
    free_energy_300k: float | None = quantity(
        "Harmonic vibrational free energy at 300 K per atom", "eV/atom"
    )
    entropy_300k: float | None = quantity(
        "Vibrational entropy at 300 K per mole of atoms", "J/K/mol"
    )
    heat_capacity_300k: float | None = quantity(
        "Heat capacity C_v at 300 K per mole of atoms", "J/K/mol"
    )
    band_structure: dict | None = bulky(
        "Band path: q-points, distances, frequencies (THz)"
    )
    force_constants: list | None = bulky("Force constants, eV/Å²")


class AdsorptionDocument(ResultDocument):
    """The adsorption energy of one adsorbate on one host, over all placements."""

    property: str = "adsorption"
    columns: ClassVar[tuple[str, ...]] = (
        "host",
        "adsorbate",
        "site",
        "adsorption_energy",
        "reference_scheme",
        "n_candidates",
        "n_anomalous",
    )
    host: str = Field(description="Host: formula and Miller index, or the MOF name")
    miller_index: list[int] | None = Field(None, description="Surface Miller index")
    adsorbate: str = Field(description="Adsorbate name")
    site: str | None = Field(None, description="Site of the lowest valid candidate")
    adsorption_energy: float | None = quantity(
        "E(host+adsorbate) - E(host) - E(reference)", "eV"
    )
    reference_scheme: str = Field(description="'gas' (molecules) or 'oc20' (atomic)")
    reference_energy: float | None = Field(None, description="E(reference), eV")
    reference_description: str | None = Field(None, description="How it was obtained")
    host_energy: float | None = quantity(
        "Relaxed empty host, the whole slab or framework cell as computed", "eV"
    )
    n_candidates: int = Field(0, description="Placements relaxed")
    n_anomalous: int = Field(0, description="Placements flagged and excluded")
    candidates: list[dict] = Field(
        default_factory=list,
        description="Every placement: site, final_site, energy (eV), "
        "adsorption_energy (eV), anomalies, converged",
    )
    relaxed_structures: list[Structure | None] | None = bulky("Relaxed placements")
    slab: dict | None = Field(
        None,
        description="The slab as built: layers, fixed_layers, supercell [n, m], "
        "surface_atoms, coverage (ML), thickness (Å), vacuum (Å), "
        "image_distance (Å, in-plane periodic images) and the protocol",
    )
    warnings: list[str] = Field(
        default_factory=list, description="What may make the result less reliable"
    )


class SlabConvergenceDocument(ResultDocument):
    """E_ads of one adsorbate on one surface against slab thickness and width."""

    property: str = "slab_convergence"
    columns: ClassVar[tuple[str, ...]] = (
        "host",
        "adsorbate",
        "adsorption_energy",
        "max_deviation",
    )
    host: str = Field(description="Formula and Miller index")
    miller_index: list[int] | None = Field(None, description="Surface Miller index")
    adsorbate: str = Field(description="Adsorbate name")
    reference_scheme: str = Field(description="'gas' (molecules) or 'oc20' (atomic)")
    free_layers: int | None = Field(None, description="Top layers relaxed")
    vacuum: float | None = Field(None, description="Vacuum, Å")
    rows: list[dict] = Field(
        default_factory=list,
        description="Per setting: layers, fixed_layers, supercell [n, m], "
        "coverage (ML), image_distance (Å), adsorption_energy (eV, lowest valid "
        "site), site, deviation (eV, from the largest setting)",
    )
    adsorption_energy: float | None = quantity(
        "On the thickest slab of the largest supercell", "eV"
    )
    max_deviation: float | None = quantity(
        "Largest |E_ads - adsorption_energy| over the rows", "eV"
    )


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
    henry_coefficient_error: list[float] | None = Field(
        None, description="Bootstrap standard error of K_H, mol kg⁻¹ Pa⁻¹"
    )
    heat_of_adsorption: list[float | None] | None = quantity(
        "Q_st at infinite dilution per temperature, positive when binding", "kJ/mol"
    )
    heat_of_adsorption_error: list[float | None] | None = Field(
        None, description="Bootstrap standard error of Q_st, kJ/mol"
    )
    mean_energy: list[float | None] | None = Field(
        None, description="Boltzmann-weighted <ΔE> per temperature, eV"
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
    energy_floor: float | None = Field(
        None,
        description="ΔE below it is unphysical (zero weight), eV: the lowest "
        "relaxed-site energy minus floor_kt k_B T",
    )
    site_energies: list[float] = Field(
        default_factory=list,
        description="ΔE of the guest's sites relaxed with the model "
        "(framework fixed), eV",
    )
    importance_weights: list[float] | None = Field(
        None,
        description="p_uniform/q of each accepted insertion, in the order of "
        "energies (1 for uniform sampling), unitless",
    )
    top_energies: list[float] = Field(
        default_factory=list,
        description="ΔE of the top-weighted insertions at the first "
        "temperature, eV, heaviest first",
    )
    top_geometries: list[Structure] | None = bulky(
        "Framework + guest of the top-weighted insertions, heaviest first"
    )
    n_insertions: int = Field(0, description="Insertions made")
    n_overlapping: int = Field(0, description="Inside the hard core: zero weight")
    overlap_fraction: float | None = Field(None, description="n_overlapping / n")
    n_unphysical: int = Field(
        0, description="ΔE below energy_floor: zero weight, excluded as artefacts"
    )
    n_failed: int = Field(
        0,
        description="Insertions the model could not evaluate: left out of the "
        "averages (and their denominator); above 1% of evaluations the result "
        "is failed",
    )
    lowest_energy: float | None = Field(None, description="Lowest accepted ΔE, eV")
    framework_density: float | None = Field(None, description="kg/m³")
    framework_energy: float | None = quantity(
        "Empty framework, the whole cell as computed", "eV"
    )
    guest_energy: float | None = Field(None, description="Relaxed gas-phase guest, eV")
    energies: list[float] | None = Field(
        None, description="Accepted ΔE, eV, in insertion order"
    )
    selectivity: dict[str, list[float | None]] = Field(
        default_factory=dict,
        description="K_H of this guest over that of each other guest, per "
        "temperature, unitless",
    )
    warnings: list[str] = Field(
        default_factory=list, description="What may make the result less reliable"
    )


class MDDocument(ResultDocument):
    """One molecular dynamics run of a material at one temperature."""

    property: str = "md"
    columns: ClassVar[tuple[str, ...]] = (
        "ensemble",
        "temperature",
        "mean_temperature",
        "mean_pressure",
        "volume_change",
        "max_displacement",
        "still_crystalline",
        "diffusion_coefficient",
    )
    ensemble: str = Field(description="nve, nvt (Langevin) or npt (+ Berendsen)")
    temperature: float = quantity("Target (initial for NVE) temperature", "K", ...)
    pressure: float | None = Field(None, description="NPT target pressure, GPa")
    timestep: float = Field(description="fs")
    steps: int = Field(0, description="Steps run (fewer than asked if it stopped)")
    n_atoms: int | None = Field(None, description="Atoms simulated (supercell)")
    duration: float | None = Field(None, description="Simulated time, ps")
    mean_temperature: float | None = quantity("Over the second half of the run", "K")
    mean_pressure: float | None = quantity(
        "Virial + kinetic, second half (periodic cells)", "GPa"
    )
    volume_change: float | None = quantity(
        "Mean volume of the second half over the start, minus 1", "%"
    )
    max_displacement: float | None = quantity(
        "Largest distance an atom ended from its start", "Å"
    )
    rdf_similarity: float | None = Field(
        None,
        description="Correlation of the RDF of the last quarter with that of "
        "the input structure (0.25 Å smearing), unitless (1: same order)",
    )
    still_crystalline: bool | None = Field(
        None, description="rdf_similarity >= 0.8: the structure kept its order"
    )
    diffusion_coefficient: float | None = quantity(
        "From the MSD slope of the second half; None while atoms only vibrate "
        "(final MSD below 4 Å²)",
        "cm²/s",
    )
    energy_drift: float | None = Field(
        None, description="NVE: slope of the total energy, eV/atom/ps"
    )
    time: list[float] = Field(default_factory=list, description="Sample times, fs")
    temperatures: list[float] = Field(default_factory=list, description="K, sampled")
    potential_energies: list[float] = Field(
        default_factory=list, description="eV/atom, sampled"
    )
    volumes: list[float] = Field(default_factory=list, description="Å³/atom, sampled")
    trajectory: str | None = Field(
        None, description="ASE trajectory file of the sampled frames (not stored here)"
    )


class NebDocument(ResultDocument):
    """One climbing-image NEB band: the barrier of one hop."""

    property: str = "neb"
    columns: ClassVar[tuple[str, ...]] = (
        "barrier",
        "reverse_barrier",
        "reaction_energy",
        "converged",
    )
    band: dict = Field(
        default_factory=dict,
        description="What hops: kind (vacancy, surface or path) and its details",
    )
    barrier: float | None = quantity("Forward barrier", "eV")
    reverse_barrier: float | None = quantity("Reverse barrier", "eV")
    reaction_energy: float | None = quantity("E(final) - E(initial)", "eV")
    energies: list[float] = Field(
        default_factory=list, description="Profile: each image minus the initial, eV"
    )
    climbing_image: int | None = Field(None, description="Index of the highest image")
    converged: bool | None = Field(None, description="NEB forces below fmax")
    steps: int = Field(0, description="FIRE steps of the band")
    images: list[Structure] | None = bulky("All images, end points included")
