"""The invariance entry of every registered property: its representations,
how each document field compares, its tolerance and why, and cheap settings.

Tolerances come from three sources, named in each field's ``why``:

- float32 noise: energies summed over a cell in float32 carry ~1e-7
  relative error (1e-6 eV/atom), stresses and forces ~1e-5 of their scale;
- optimiser endpoints: a relaxation stops anywhere below its ``fmax``, so
  energies agree to ~fmax² / (stiffness) per atom and volumes to ~fmax;
- the cell a Maker chooses: phonon and MD supercells follow ``min_length``
  and differ between representations, so their results agree only to the
  convergence of that choice (measured, with a margin, in the docs).

A registered property without an entry here fails ``tests/flows/
test_invariance.py``, as one without a document fails ``test_house.py``.
"""

from __future__ import annotations

from pathlib import Path

from ase.build import bulk
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from ..jobs import ModelSettings
from ..jobs.registry import makers
from ..properties import (
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
from .invariance import Entry, Field
from .representations import Representation, conventional

__all__ = ["CHEAP", "ENTRIES", "MOF_74", "SETTINGS"]

#: The model the cheap checks run: 7net-0 on the CPU, float32.
SETTINGS = ModelSettings(model="7net-0", device="cpu")
#: A shipped framework (54 atoms in its primitive cell).
MOF_74 = Path(__file__).parents[2] / "workflows" / "structures" / "Mg-MOF-74.cif"

#: The representations of a bulk crystal.
BULK = (
    "conventional",
    "supercell 2x1x1",
    "supercell non-diagonal",
    "rotated",
    "permuted",
)
#: Those that keep a Maker's own supercell choice comparable.
SAME_CELL = ("rotated", "permuted")

F32 = "float32 noise of a cell sum (~1e-7 relative)"
RELAXED = "relaxations stop anywhere below fmax"
INPUT = "an input or setting, not a result"
PATH = "the optimiser's path depends on the cell and order"
CHOSEN = "of the cell the Maker chose, which differs between representations"


def _si(a: float = 5.43, cubic: bool = False) -> Structure:
    return AseAtomsAdaptor.get_structure(bulk("Si", "diamond", a=a, cubic=cubic))


def _si_rattled() -> Structure:
    """Si, strained off cubic and rattled: no force or stress is zero or
    isotropic by symmetry, so rotating them back is tested."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.set_cell(
        atoms.cell.array @ [[1.02, 0.01, 0.0], [0.0, 0.99, 0.03], [0.0, 0.0, 1.01]],
        scale_atoms=True,
    )
    atoms.rattle(0.05, seed=1)
    return AseAtomsAdaptor.get_structure(atoms)


def _cu() -> Structure:
    return AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.63))


def _mgo() -> Structure:
    return AseAtomsAdaptor.get_structure(bulk("MgO", "rocksalt", a=4.21))


def _vacancy_band() -> dict:
    """A nearest-neighbour vacancy hop in a 2x2x2 Cu cell (31 atoms)."""
    cell = bulk("Cu", "fcc", a=3.63, cubic=True) * (2, 2, 2)
    first = cell.copy()
    del first[0]
    final = first.copy()
    d = cell.get_distances(0, range(1, len(cell)), mic=True)
    neighbour = int(d.argmin())  # index in the cell without atom 0
    final.positions[neighbour] = cell.positions[0]
    return {
        "kind": "path",
        "initial": AseAtomsAdaptor.get_structure(first),
        "final": AseAtomsAdaptor.get_structure(final),
    }


def _framework() -> Structure:
    return Structure.from_file(str(MOF_74))


#: κ's phonon settings in the invariance check (the fc3 supercell of Si's
#: primitive cell written in the conventional cell's basis).
KAPPA_PHONON = {"supercell": [[-1, 1, 1], [1, -1, 1], [1, 1, -1]], "mesh": 20.0}


def _conventional_with(**settings) -> Representation:
    return Representation("conventional", conventional, settings=settings)


def _miller(*pairs) -> Representation:
    """Equivalent Miller indices of a cubic crystal, mapped back by name."""
    given = [list(new) for new, _ in pairs]
    rename = {" ".join(map(str, n)): " ".join(map(str, o)) for n, o in pairs}
    return Representation(
        "equivalent Miller indices",
        lambda s: s.copy(),
        settings={"miller_indices": given},
        rename=rename,
    )


SLAB = {"layers": 3, "fixed_layers": 1, "supercell": [2, 2], "vacuum": 12.0}

ENTRIES: dict[str, Entry] = {
    "relax": Entry(
        "relax",
        fields={
            "energy": Field("per_atom", 1e-4, f"eV/atom: {RELAXED} (fmax 0.005)"),
            "energy_per_atom": Field("intensive", 1e-4, f"eV/atom: {RELAXED}"),
            "volume_per_atom": Field(
                "intensive",
                0.02,
                "Å³/atom: fmax 0.005 eV/Å on the cell's virial per atom leaves "
                "~0.04 GPa, ΔV/V ~ 5e-4 (0.01 Å³/atom) each way",
            ),
            "volume_change": Field("intensive", 1e-3, "as the volume (over ~20 Å³)"),
            "structure": Field("structure", 0.0, "pymatgen's StructureMatcher"),
            "converged": Field("same", 0.0, "each converges"),
        },
        skip={
            "steps": PATH,
            "max_force": f"{PATH}; below fmax on each",
            "fmax": INPUT,
            "relax_cell": INPUT,
        },
        representations=BULK,
        maker=lambda: RelaxMaker(settings=SETTINGS, fmax=0.005, max_steps=300),
        material=lambda: _si(5.50),
        slow=False,
    ),
    "static": Entry(
        "static",
        fields={
            "energy": Field("per_atom", 2e-5, f"eV/atom: {F32}"),
            "energy_per_atom": Field("intensive", 2e-5, f"eV/atom: {F32}"),
            "forces": Field("norms", 2e-4, f"eV/Å: {F32} of forces"),
            "stress": Field("stress", 2e-3, f"GPa: {F32} of the virial"),
        },
        skip={},
        representations=("supercell 2x1x1", "supercell non-diagonal", *SAME_CELL),
        maker=lambda: StaticMaker(settings=SETTINGS),
        material=_si_rattled,
        slow=False,
    ),
    "elastic": Entry(
        "elastic",
        fields={
            "elastic_tensor": Field(
                "elastic",
                2.5,
                "GPa: 7net-0's (and sevenn's) stress in Si is not linear in "
                "strain above ~1e-4 (dσ/dε along a general direction moves 4% "
                "between 1e-4 and 1e-3), so fits at 0.5-1% depend on the frame "
                "by ~1.2-1.9 GPa; other cells of one frame agree to 1e-4 GPa",
            ),
            "bulk_modulus_vrh": Field("intensive", 1.0, "GPa: as the tensor"),
            "shear_modulus_vrh": Field("intensive", 1.0, "GPa: as the tensor"),
        },
        skip={
            "strain_magnitudes": INPUT,
            "strains": "in each cell's own frame (the tensor is compared)",
            "stresses": "in each cell's own frame (the tensor is compared)",
            "max_steps_reached": PATH,
        },
        representations=("conventional", "supercell non-diagonal", *SAME_CELL),
        maker=lambda: ElasticMaker(settings=SETTINGS),
        material=_si,
        slow=False,
    ),
    "eos": Entry(
        "eos",
        fields={
            "v0": Field("intensive", 1e-3, f"Å³/atom: {F32}, through the fit"),
            "b0": Field("intensive", 0.1, f"GPa: {F32}, a curvature of 5 points"),
            "b1": Field("intensive", 0.03, f"{F32}, a third derivative of 5 points"),
            "e0": Field("intensive", 1e-5, f"eV/atom: {F32}"),
            "volumes": Field("intensive", 1e-6, "Å³/atom: the same strains"),
            "energies": Field("intensive", 1e-5, f"eV/atom: {F32}"),
        },
        skip={"eos": INPUT, "max_steps_reached": PATH},
        representations=("conventional", "supercell non-diagonal", *SAME_CELL),
        maker=lambda: EosMaker(
            settings=SETTINGS, linear_strains=[-0.02, -0.01, 0.0, 0.01, 0.02]
        ),
        material=_si,
        slow=False,
    ),
    "phonon": Entry(
        "phonon",
        fields={
            "min_frequency": Field("intensive", 0.1, "THz: float32 forces"),
            "max_frequency": Field("intensive", 0.1, "THz: float32 forces"),
            "free_energy_300k": Field("intensive", 5e-4, "eV/atom: float32 forces"),
            "entropy_300k": Field("intensive", 0.1, "J/K/mol of atoms: as F"),
            "heat_capacity_300k": Field("intensive", 0.1, "J/K/mol of atoms: as F"),
            "has_imaginary_modes": Field("same", 0.0, "none in Si"),
            "supercell_matrix": Field(
                "same", 0.0, "of the standardized primitive cell, whatever the input"
            ),
        },
        skip={
            "gamma_frequencies": "a larger cell folds more modes onto Gamma",
            "primitive_matrix": "in each input cell's basis",
            "displacement": INPUT,
            "band_structure": "a path of the cell's own reciprocal lattice",
            "force_constants": "in each cell's frame and order",
        },
        representations=(
            "conventional",
            "supercell 2x1x1",
            "supercell non-diagonal",
            *SAME_CELL,
        ),
        maker=lambda: PhononMaker(settings=SETTINGS, min_length=10.0),
        material=_si,
        slow=False,
    ),
    "qha": Entry(
        "qha",
        fields={
            "volume": Field("intensive", 0.01, f"Å³/atom: {RELAXED} and F(V) fits"),
            "volume_300k": Field("intensive", 0.01, "Å³/atom: as volume"),
            "thermal_expansion": Field("intensive", 1e-6, "1/K: as volume"),
            "thermal_expansion_300k": Field("intensive", 1e-6, "1/K: as volume"),
            "thermal_expansion_300k_subrange": Field(
                "intensive", 1e-6, "1/K: as volume (None with 5 volumes)"
            ),
            "bulk_modulus": Field("intensive", 1.0, "GPa: as volume"),
            "bulk_modulus_300k": Field("intensive", 1.0, "GPa: as volume"),
            "heat_capacity": Field("intensive", 0.2, "J/K/mol of atoms: as volume"),
            "gibbs_free_energy": Field("intensive", 1e-3, "eV/atom: as volume"),
            "volumes": Field("intensive", 1e-3, "Å³/atom: the same strains"),
            "electronic_energies": Field("intensive", 1e-4, f"eV/atom: {RELAXED}"),
        },
        skip={
            "pressure": INPUT,
            "eos": INPUT,
            "temperatures": INPUT,
            "imaginary_modes": "none in Si",
            "supercell_matrix": "compared by the phonon entry",
            "primitive_matrix": "in each input cell's basis",
            "t_max_valid": "None unless V(T) leaves the sampled volumes",
            "warnings": "none for Si over 0-400 K",
        },
        representations=("conventional", "supercell 2x1x1", *SAME_CELL),
        maker=lambda: QhaMaker(
            settings=SETTINGS,
            phonon={"min_length": 7.0},
            n_volumes=5,
            temperatures={"t_max": 400.0, "t_step": 40.0},
        ),
        material=_si,
    ),
    "thermal_conductivity": Entry(
        "thermal_conductivity",
        fields={
            "kappa": Field(
                "tensor", 0.02, "of its largest component: float32 fc3", True
            ),
            "kappa_average": Field("intensive", 0.02, "float32 fc3", True),
            "kappa_300k": Field("intensive", 0.02, "float32 fc3", True),
            "min_frequency": Field("intensive", 0.05, "THz: float32 fc2"),
        },
        skip={
            "method": INPUT,
            "temperatures": INPUT,
            "isotope": INPUT,
            "mesh": "a length, turned into the primitive cell's mesh",
            "supercell_matrix": INPUT,
            "phonon_supercell_matrix": INPUT,
            "primitive_matrix": "in each input cell's basis",
            "n_supercells": "symmetry found in each cell's frame",
            "imaginary_modes": "none in Si",
            "fc3_bytes": CHOSEN,
            "fc2": "in each cell's frame and order",
            "fc3": "in each cell's frame and order",
        },
        representations=SAME_CELL,
        extra=(
            _conventional_with(
                phonon={**KAPPA_PHONON, "supercell": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}
            ),
        ),
        maker=lambda: ThermalConductivityMaker(
            settings=SETTINGS, phonon=KAPPA_PHONON, temperatures=[300.0]
        ),
        material=_si,
    ),
    "stability": Entry(
        "stability",
        fields={
            "energy_per_atom": Field("intensive", 2e-5, f"eV/atom: {F32}"),
            "formation_energy_per_atom": Field("intensive", 2e-5, f"eV/atom: {F32}"),
            "e_above_hull": Field("intensive", 2e-5, f"eV/atom: {F32}"),
            "decomposition": Field("facets", 1e-6, "fractions of the same phases"),
            "hull_size": Field("same", 0.0, "the same references"),
            "correction_per_atom": Field("intensive", 0.0, "none"),
        },
        skip={
            "references": "labels of the same references",
            "reference_source": INPUT,
            "corrections": INPUT,
        },
        representations=BULK,
        maker=lambda: StabilityMaker(settings=SETTINGS),
        material=_mgo,
        together=False,
    ),
    "surface_energy": Entry(
        "surface_energy",
        fields={
            "surface_energies": Field("facets", 0.005, f"J/m²: slabs {RELAXED}"),
            "weighted_surface_energy": Field("intensive", 0.005, "J/m²: as facets"),
            "wulff_fractions": Field("facets", 0.01, "as the surface energies"),
            "bulk_energy_per_atom": Field("intensive", 2e-4, f"eV/atom: {RELAXED}"),
            "wulff_error": Field("same", 0.0, "none: (100) and (111) close Si's"),
        },
        skip={
            "slabs": "the slabs as built (each cell's own)",
            "relaxed_slabs": "the relaxed slab cells, each written in its own frame",
            "convergence": "not asked (surface_convergence off)",
            "terminations": "every termination's γ: the lowest is compared",
            "failed_facets": "none for Si; the reasons quote γ to 1 meV",
            "equivalent_facets": "the indices as asked (an input)",
        },
        representations=("conventional", *SAME_CELL),
        extra=(_miller(((0, 1, 0), (1, 0, 0)), ((1, -1, 1), (1, 1, 1))),),
        maker=lambda: SurfaceEnergyMaker(
            settings=SETTINGS,
            miller_indices=[[1, 0, 0], [1, 1, 1]],
            slab={"layers": 4, "fixed_layers": 0, "supercell": [1, 1], "vacuum": 10.0},
        ),
        material=_si,
    ),
    "adsorption": Entry(
        "adsorption",
        fields={
            "adsorption_energy": Field(
                "intensive", 5e-3, f"eV: {RELAXED} (0.05 eV/Å: ~1e-3 eV)"
            ),
            "reference_energy": Field("intensive", 1e-4, "eV: the same molecule"),
            "site": Field("same", 0.0, "the same lowest site"),
        },
        skip={
            "host": "names the Miller index given",
            "miller_index": INPUT,
            "adsorbate": INPUT,
            "reference_scheme": INPUT,
            "reference_description": INPUT,
            "host_energy": "of the slab as built (size per cell)",
            "n_candidates": "sites found on each slab as built",
            "n_anomalous": PATH,
            "candidates": "per placement, in each slab's own order",
            "relaxed_structures": "in each slab's own frame",
            "slab": "the slab as built",
            "warnings": "free text",
        },
        representations=("conventional", *SAME_CELL),
        extra=(_miller(((1, -1, 1), (1, 1, 1))),),
        maker=lambda: SlabAdsorptionMaker(
            settings=SETTINGS,
            adsorbates=["H"],
            miller_indices=[[1, 1, 1]],
            slab=SLAB,
            relax={"fmax": 0.05, "max_steps": 200},
        ),
        material=_cu,
    ),
    "slab_convergence": Entry(
        "slab_convergence",
        fields={
            "adsorption_energy": Field(
                "intensive", 5e-3, f"eV: {RELAXED} (0.05 eV/Å: ~1e-3 eV)"
            ),
            "max_deviation": Field("intensive", 5e-3, "eV: as the energies"),
        },
        skip={
            "host": "names the Miller index given",
            "miller_index": INPUT,
            "adsorbate": INPUT,
            "reference_scheme": INPUT,
            "free_layers": INPUT,
            "vacuum": INPUT,
            "rows": "per slab as built",
        },
        representations=("conventional", *SAME_CELL),
        maker=lambda: SlabConvergenceMaker(
            settings=SETTINGS,
            adsorbates=["H"],
            miller_indices=[[1, 1, 1]],
            layers=[3, 4],
            supercells=[[2, 2]],
            free_layers=1,
            vacuum=12.0,
            relax={"fmax": 0.05, "max_steps": 200},
        ),
        material=_cu,
    ),
    "md": Entry(
        "md",
        fields={
            "mean_temperature": Field(
                "intensive", 0.25, "short NVT runs: fluctuations ~1/sqrt(N)", True
            ),
            "mean_pressure": Field("intensive", 1.0, "GPa: short-run fluctuations"),
            "rdf_similarity": Field("intensive", 0.1, "short-run fluctuations"),
            "still_crystalline": Field("same", 0.0, "Si stays crystalline at 300 K"),
            "diffusion_coefficient": Field("intensive", 0.0, "None: atoms vibrate"),
        },
        skip={
            "ensemble": INPUT,
            "temperature": INPUT,
            "pressure": INPUT,
            "timestep": INPUT,
            "steps": INPUT,
            "n_atoms": CHOSEN,
            "duration": INPUT,
            "volume_change": "NVT: the cell is fixed",
            "max_displacement": "the largest of a random sample",
            "energy_drift": "NVE only",
            "time": INPUT,
            "temperatures": "sampled trajectory (random velocities)",
            "potential_energies": "sampled trajectory (random velocities)",
            "volumes": "sampled trajectory (random velocities)",
            "trajectory": "a file name",
        },
        representations=("conventional", *SAME_CELL),
        maker=lambda: MDMaker(
            settings=SETTINGS,
            temperatures=[300.0],
            steps=100,
            interval=10,
            min_length=8.0,
        ),
        material=_si,
    ),
    "neb": Entry(
        "neb",
        fields={
            "barrier": Field("intensive", 5e-3, "eV: bands converge to fmax 0.05"),
            "reverse_barrier": Field("intensive", 5e-3, "eV: as the barrier"),
            "reaction_energy": Field("intensive", 5e-3, f"eV: ends {RELAXED}"),
            "energies": Field("intensive", 5e-3, "eV: as the barrier"),
            "climbing_image": Field("same", 0.0, "the same band"),
            "converged": Field("same", 0.0, "each converges"),
        },
        skip={
            "band": "names the end points given",
            "steps": PATH,
            "images": "in each representation's frame and order",
        },
        representations=SAME_CELL,
        maker=lambda: NebMaker(settings=SETTINGS, n_images=3, fmax=0.05, max_steps=300),
        material=_vacancy_band,
    ),
    "mof": Entry(
        "mof",
        fields={
            "adsorption_energy": Field(
                "intensive", 5e-3, f"eV: {RELAXED} (0.05 eV/Å: ~1e-3 eV)"
            ),
            "reference_energy": Field("intensive", 1e-4, "eV: the same molecule"),
            "site": Field("same", 0.0, "the same lowest site"),
        },
        skip={
            "host": INPUT,
            "host_energy": "of the cell the Maker reads (primitive, repeated to "
            "min_length), whatever the file holds; the document names no atom count",
            "miller_index": "None for frameworks",
            "adsorbate": INPUT,
            "reference_scheme": INPUT,
            "reference_description": INPUT,
            "n_candidates": "sites found in each cell as read",
            "n_anomalous": PATH,
            "candidates": "per placement, in each cell's own order",
            "relaxed_structures": "in each cell's own frame",
            "slab": "None for frameworks",
            "warnings": "free text",
        },
        representations=("supercell 2x1x1", "permuted"),
        maker=lambda: MofAdsorptionMaker(
            settings=SETTINGS, guests=["CO2"], n_random=0, relax={"max_steps": 200}
        ),
        material=_framework,
    ),
    "widom": Entry(
        "widom",
        fields={
            "henry_coefficient": Field(
                "sigma",
                4.0,
                "sigmas: a stochastic sample",
                error="henry_coefficient_error",
            ),
            "heat_of_adsorption": Field(
                "sigma",
                4.0,
                "sigmas: a stochastic sample",
                error="heat_of_adsorption_error",
            ),
            "framework_density": Field("intensive", 1e-3, "kg/m³: the same crystal"),
            "guest_energy": Field("intensive", 1e-4, "eV: the same molecule"),
        },
        skip={
            "host": INPUT,
            "guest": INPUT,
            "temperature": INPUT,
            "dispersion": INPUT,
            "henry_coefficient_error": "a sample statistic",
            "heat_of_adsorption_error": "a sample statistic",
            "mean_energy": "a sample statistic (K_H and Q_st are compared)",
            "effective_insertions": "a sample statistic",
            "sampling": INPUT,
            "evaluations": "a sample statistic",
            "converged": "a sample statistic",
            "unconverged_reason": "free text",
            "history": "a sample statistic",
            "energy_floor": "from sites relaxed in each cell",
            "site_energies": "from sites relaxed in each cell",
            "importance_weights": "a sample statistic",
            "top_energies": "a sample statistic",
            "top_geometries": "a sample statistic",
            "n_insertions": INPUT,
            "n_overlapping": "a sample statistic",
            "overlap_fraction": "a sample statistic",
            "n_unphysical": "a sample statistic",
            "n_failed": "a sample statistic",
            "lowest_energy": "a sample statistic",
            "framework_energy": "of the cell as read (repeated to min_length)",
            "energies": "a sample statistic",
            "selectivity": "one guest",
            "warnings": "free text",
        },
        representations=("supercell 2x1x1", "permuted"),
        maker=lambda: WidomMaker(
            settings=SETTINGS,
            guests=["CO2"],
            temperatures=[300.0],
            n_insertions=300,
            site_relaxations=2,
            site_relax={"max_steps": 40},
        ),
        material=_framework,
    ),
}

# a property module may carry its own entry (its Maker's ``invariance()``),
# so that a new property is one module
ENTRIES.update(
    {
        section: cls.invariance()
        for section, cls in makers().items()
        if section not in ENTRIES and hasattr(cls, "invariance")
    }
)

#: The sections cheap enough for the default test run.
CHEAP = tuple(name for name, entry in ENTRIES.items() if not entry.slow)
