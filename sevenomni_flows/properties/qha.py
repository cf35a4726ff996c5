"""Quasi-harmonic thermal properties: phonons at several volumes, PhonopyQHA.

The cells of every material at every volume are relaxed at fixed cell in
one batch, and the displaced supercells of all of them are evaluated in
one batched prediction; phonopy then gives each volume's harmonic free
energy, and ``PhonopyQHA`` minimises G(V; T, p) at each temperature.
Everything handed to it is per atom (phonopy's F, C_v and S come per
primitive cell), so any cell of a crystal gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal

import numpy as np
from phonopy import Phonopy, PhonopyQHA
from phonopy.structure.atoms import PhonopyAtoms
from phonopy.structure.cells import get_supercell
from phonopy.structure.grid_points import length2mesh
from pydantic import Field
from pymatgen.io.ase import AseAtomsAdaptor

from ..jobs.base import Target, maker_settings, protocol
from ..jobs.calculation import PropertyMaker, model_title
from ..jobs.plots import start_plot
from ..jobs.settings import (
    PhononSettings,
    RelaxSettings,
    TemperatureGrid,
    accepts_old_names,
)
from ..schemas import ResultDocument, failure_type, quantity
from .phonon import (
    CUTOFF_FREQUENCY,
    SYMPREC,
    PhononCell,
    per_atom,
    phonon_cell,
    set_forces,
    to_ase,
)
from .relax import inner_failure, per_cell, relax_groups

__all__ = [
    "EOS_NAMES",
    "RANGE_TOLERANCE",
    "QhaDocument",
    "QhaMaker",
    "first_outside",
    "force_constants",
    "run_mesh",
    "scaled_copy",
    "shared_mesh",
    "subrange_alpha",
    "volume_fields",
    "volume_phonons",
]

#: phonopy's EOS for F(V) that the QHA may fit.
EOS_NAMES: Final = ("vinet", "birch_murnaghan", "murnaghan")


def first_outside(volume, sampled) -> int | None:
    """The index of the first volume of V(T) outside the range of the
    ``sampled`` volumes (where the EOS fit extrapolates), or None."""
    volume = np.asarray(volume)
    outside = np.flatnonzero((volume < min(sampled)) | (volume > max(sampled)))
    return int(outside[0]) if outside.size else None


#: Relative difference of α(300 K) between all sampled volumes and the 5
#: nearest V(300 K) above which a document warns: α then depends on the
#: range, through a vibrational F(V) that is not one smooth EOS, more than
#: the fit can tell.  7net-0 at the default range: MgO 1%, Cu 5-7%, Al 6%,
#: NaCl 29%, Si 114% (Cu's α from [-0.01, 0.01] is 18-20% below the
#: default's; Vinet, Birch-Murnaghan and Murnaghan agree within 0.3%).
RANGE_TOLERANCE: Final[float] = 0.05


def subrange_alpha(qha_inputs: dict, temperatures, volume_300k: float) -> float:
    """α(300 K), 1/K, from phonopy's QHA on the 5 sampled volumes nearest
    ``volume_300k`` (``qha_inputs``: the keyword arguments of the full
    ``PhonopyQHA``, per atom), over the temperatures up to 300 K and two
    steps beyond (its finite difference needs one)."""
    volumes = np.asarray(qha_inputs["volumes"])
    near = np.sort(np.argsort(np.abs(volumes - volume_300k))[:5])
    at = int(np.argmin(np.abs(temperatures - 300.0)))
    temps = temperatures[: at + 3]
    n = len(temps)
    qha = PhonopyQHA(
        volumes=volumes[near],
        electronic_energies=np.asarray(qha_inputs["electronic_energies"])[near],
        temperatures=temps,
        free_energy=qha_inputs["free_energy"][:n, near],
        cv=qha_inputs["cv"][:n, near],
        entropy=qha_inputs["entropy"][:n, near],
        pressure=qha_inputs["pressure"],
        eos=qha_inputs["eos"],
        t_max=float(temps[-1]),
    )
    return float(qha.thermal_expansion[at])


def volume_fields(item, cell, results) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per-atom volumes (Å³/atom) and static energies (eV/atom) of an item's
    relaxed volumes, and the fields every document made from them shares."""
    n_atoms = len(item.structure)
    volumes = np.array([r.atoms.get_volume() for r in results]) / n_atoms
    energies = np.array([r.energy for r in results]) / n_atoms
    common = {
        "volumes": volumes.tolist(),
        "electronic_energies": energies.tolist(),
        "supercell_matrix": cell.supercell_matrix,
        "primitive_matrix": cell.primitive_matrix,
        "input_structure": item.structure,
    }
    return volumes, energies, common


def force_constants(phonons, preds, volumes) -> list[np.ndarray] | tuple[str, str]:
    """Each volume's force constants from its forces (one volume at a time:
    a phonopy object may serve several, see :func:`volume_phonons`); or why
    a displaced supercell failed and the failure's type."""
    fcs = []
    for p, mine, volume in zip(phonons, preds, volumes, strict=True):
        errors = set_forces(p, mine)
        if errors:
            why = f"a displaced supercell at {volume:.3f} Å³/atom failed: {errors[0]}"
            return why, failure_type(errors[0])
        p.produce_force_constants()
        fcs.append(p.force_constants)
    return fcs


def scaled_copy(
    unit: PhonopyAtoms, reference: PhonopyAtoms, tol: float = 1e-10
) -> bool:
    """Whether ``unit`` is ``reference`` scaled uniformly: the same atoms at
    the same fractional positions and lattice vectors in proportion (both to
    ``tol``, relative), so that they share symmetry, displacements (Å) and
    the shortest vectors phonopy's dynamical matrix uses."""
    if list(unit.symbols) != list(reference.symbols):
        return False
    factor = np.cbrt(unit.volume / reference.volume)
    lattice = factor * np.asarray(reference.cell)
    if np.abs(np.asarray(unit.cell) - lattice).max() > tol * np.abs(lattice).max():
        return False
    shift = np.asarray(unit.scaled_positions) - np.asarray(reference.scaled_positions)
    return bool(np.abs(shift - np.round(shift)).max() <= tol)


def run_mesh(phonon: Phonopy, fc: np.ndarray, mesh: list[int]) -> None:
    """Phonons of the force constants ``fc`` on the Γ-centred ``mesh``.

    A phonopy object that has this mesh already (one shared by several
    volumes has it from the previous volume) keeps its q-points, whose
    set-up costs phonopy several times the diagonalisation (Cu, 29³: 0.1 s
    against 0.03 s): ``fc`` is copied into the dynamical matrix its mesh
    reads force constants from, and the mesh solved again.
    """
    current = phonon.mesh
    if (
        current is not None
        and np.array_equal(current.mesh_numbers, mesh)
        and current.dynamical_matrix.force_constants.shape == np.shape(fc)
    ):
        np.copyto(current.dynamical_matrix.force_constants, fc)
        current.run()
    else:
        phonon.force_constants = fc
        phonon.run_mesh(mesh, is_gamma_center=True)


def _displaced_about(phonon: Phonopy, unit: PhonopyAtoms) -> list:
    """The displaced supercells of ``phonon`` (its displacements, Å) about
    the supercell of ``unit``, a uniformly scaled copy of its primitive
    cell, as ASE atoms: what a phonopy object of ``unit`` would displace."""
    supercell = get_supercell(unit, phonon.supercell_matrix, symprec=SYMPREC)
    cells = []
    for disp in phonon.dataset["first_atoms"]:
        positions = supercell.positions
        positions[disp["number"]] += disp["displacement"]
        cells.append(
            PhonopyAtoms(
                symbols=supercell.symbols,
                masses=supercell.masses,
                positions=positions,
                cell=supercell.cell,
            )
        )
    return [to_ase(c) for c in cells]


def shared_mesh(phonons, mesh) -> list[int]:
    """One q-mesh for every volume, that of the middle one: a mesh from a
    length changes with the volume (Cu: 29³ to 28³ across +-3%), and F(V)
    would jump there."""
    if not isinstance(mesh, list):
        middle = phonons[len(phonons) // 2]
        mesh = length2mesh(
            mesh,
            middle.primitive.cell,
            rotations=middle.primitive_symmetry.pointgroup_operations,
        )
    return [int(m) for m in mesh]


def volume_phonons(
    items,
    strains,
    ctx,
    relax: RelaxSettings,
    phonon: PhononSettings,
    shared: bool = False,
) -> list[tuple[PhononCell, list[Phonopy], list, list] | str | Exception]:
    """The phonons of every item at each lattice strain, all items at once.

    Each item's cell is scaled isotropically by each ``strain`` (lattice
    vectors times ``1 + strain``), its positions relaxed at fixed cell (all
    volumes of all items in one batch), and the displaced supercells of every
    volume evaluated in one batched prediction.  Used by the QHA and
    Grüneisen Makers.

    With ``shared``, the volumes whose relaxed primitive cell is the middle
    volume's scaled uniformly (:func:`scaled_copy`: the atoms did not move,
    as in any crystal whose positions symmetry fixes) share the middle
    volume's phonopy object: its symmetry search and displacements, the
    bulk of phonopy's set-up, are done once, and its displacements (Å) are
    applied about each volume's own supercell.  Force constants, frequencies
    and thermal properties depend on the cell only through the fractional
    positions and the Cartesian rotations, which uniform scaling leaves
    alone, so the numbers are those of one object per volume (to ~1e-12);
    the shared object must then be used one volume at a time (set each
    volume's :func:`force_constants` before its mesh).

    Returns
    -------
    list
        Per item: ``(cell, phonons, predictions, relaxations)``, the
        :class:`PhononCell` (one primitive cell and supercell for every
        volume) and, per volume, its phonopy object, the predictions of its
        displaced supercells and its relaxation result; or why the
        relaxations cannot be used (a str), or the Exception phonopy raised.
    """
    from sevenomni_core.batch import predict

    cells = []
    for it in items:
        group = []
        for eps in strains:
            scaled = it.structure.copy()
            scaled.scale_lattice(it.structure.volume * (1.0 + eps) ** 3)
            group.append(AseAtomsAdaptor.get_atoms(scaled))
        cells.append(group)
    tasks = [it.task for it in items]
    relaxed = relax_groups(cells, ctx, relax, tasks)
    setups: list = []
    for it, results in zip(items, relaxed, strict=True):
        why = inner_failure(results, relax, "volumes")
        if why:
            setups.append(why)
            continue
        try:  # one primitive cell and supercell for every volume
            cell = phonon_cell(it.structure, phonon.min_length, phonon.supercell)
            # ``relax`` keeps the atoms in order: each volume's input cell
            units = [cell.unit(AseAtomsAdaptor.get_structure(r.atoms)) for r in results]
            middle = units[len(units) // 2]
            common = cell.unit_phonopy(middle, phonon.displacement) if shared else None
            setups.append(
                (
                    cell,
                    units,
                    [
                        common
                        if common is not None and scaled_copy(u, middle)
                        else cell.unit_phonopy(u, phonon.displacement)
                        for u in units
                    ],
                )
            )
        except Exception as err:  # phonopy may refuse one structure
            setups.append(err)
    shown = [  # the displaced cells of each item, for their tasks
        [
            a
            for p, u in zip(setup[2], setup[1], strict=True)
            for a in _displaced_about(p, u)
        ]
        if isinstance(setup, tuple)
        else []
        for setup in setups
    ]
    flat = [a for group in shown for a in group]
    preds = predict(flat, model=ctx.pot, task=per_cell(shown, tasks)) if flat else []
    out, start = [], 0
    for setup, results in zip(setups, relaxed, strict=True):
        if not isinstance(setup, tuple):
            out.append(setup)
            continue
        cell, _, phonons = setup
        mine = []
        for p in phonons:
            n = len(p.dataset["first_atoms"])
            mine.append(preds[start : start + n])
            start += n
        out.append((cell, phonons, mine, results))
    return out


class QhaDocument(ResultDocument):
    """Quasi-harmonic V(T), thermal expansion, B_T(T), C_p(T) and G(T).

    Every extensive quantity is per atom, whatever cell the input is written
    in.  The lists stop where V(T) leaves the sampled volumes (``t_max_valid``,
    ``warnings``); a document whose 300 K volume lies outside them fails.
    """

    property: str = "qha"
    columns: ClassVar[tuple[str, ...]] = (
        "pressure",
        "thermal_expansion_300k",
        "volume_300k",
        "bulk_modulus_300k",
    )
    pressure: float | None = quantity("Pressure G(V) is minimised at", "GPa")
    eos: str | None = Field(None, description="EOS fitted to F(V) (phonopy name)")
    temperatures: list[float] = quantity(
        "Temperatures; the lists below follow them", "K", default_factory=list
    )
    volume: list[float] | None = quantity("Equilibrium volume V(T)", "Å³/atom")
    thermal_expansion: list[float] | None = quantity(
        "Volumetric thermal expansion (1/V) dV/dT", "1/K"
    )
    bulk_modulus: list[float] | None = quantity("Isothermal bulk modulus", "GPa")
    heat_capacity: list[float] | None = quantity(
        "Isobaric heat capacity C_p per mole of atoms", "J/K/mol"
    )
    gibbs_free_energy: list[float] | None = quantity(
        "Gibbs free energy G(T, p) per atom", "eV/atom"
    )
    thermal_expansion_300k: float | None = quantity(
        "Volumetric thermal expansion at 300 K", "1/K"
    )
    volume_300k: float | None = quantity("Volume at 300 K", "Å³/atom")
    bulk_modulus_300k: float | None = quantity("Bulk modulus at 300 K", "GPa")
    volumes: list[float] = quantity(
        "Volumes the phonons were computed at", "Å³/atom", default_factory=list
    )
    electronic_energies: list[float] = quantity(
        "Static energy at each volume, positions relaxed",
        "eV/atom",
        default_factory=list,
    )
    imaginary_modes: list[dict] = Field(
        default_factory=list,
        description="Volumes with imaginary modes: volume (Å³/atom) and "
        "min_frequency (THz)",
    )
    supercell_matrix: list[list[int]] | None = Field(
        None, description="Force-constant supercell, in the primitive cell's basis"
    )
    primitive_matrix: list[list[float]] | None = Field(
        None, description="Primitive cell (columns) in the input cell's basis"
    )
    t_max_valid: float | None = quantity(
        "Highest temperature listed: V(T) and the neighbours its finite "
        "differences use lie within the sampled volumes",
        "K",
    )
    thermal_expansion_300k_subrange: float | None = quantity(
        "Volumetric thermal expansion at 300 K from the 5 sampled volumes "
        "nearest V(300 K) alone (None with fewer than 7 volumes); a warning "
        "when it differs from thermal_expansion_300k by over "
        "RANGE_TOLERANCE",
        "1/K",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Where V(T) left the sampled volumes, cutting the lists "
        "short; where α(300 K) depends on the sampled range",
    )


@accepts_old_names
@dataclass
class QhaMaker(PropertyMaker):
    """Quasi-harmonic approximation: phonons at ``n_volumes`` volumes.

    Parameters
    ----------
    linear_strain : [low, high]
        Lattice-vector strains of the smallest and largest cells (the
        volumes span ``(1 + low)³`` to ``(1 + high)³`` of the relaxed one).
    n_volumes : int
        Volumes sampled, at least 5.
    pressures : list of float
        GPa; one document per pressure (the phonons are shared).
    temperatures : TemperatureGrid
        K: ``t_min`` (0), ``t_step``, ..., ``t_max``; a regular grid from 0 K
        (the QHA's finite differences in T need it).
    eos : str
        phonopy's EOS for F(V): ``vinet``, ``birch_murnaghan`` or ``murnaghan``.
    phonon : PhononSettings
        As for :class:`~sevenomni_flows.properties.phonon.PhononMaker` (``supercell``
        is of the input cell; without it the supercell comes from
        ``min_length`` and the standardized primitive cell, and is the same at
        every volume).
    relax : RelaxSettings
        The fixed-cell relaxation of each volume (fmax in eV/Å).
    plot_dir : str, optional
        Folder for the PNG of V(T) and the thermal expansion.
    """

    name: str = "qha"
    linear_strain: list[float] = field(default_factory=lambda: [-0.02, 0.03])
    n_volumes: int = 7
    pressures: list[float] = field(default_factory=lambda: [0.0])
    temperatures: TemperatureGrid = field(default_factory=TemperatureGrid)
    eos: Literal[EOS_NAMES] = "vinet"
    phonon: PhononSettings = field(default_factory=PhononSettings)
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.005, max_steps=300)
    )
    plot_dir: str | None = None

    property: ClassVar[str] = "qha"
    document: ClassVar[type] = QhaDocument
    stage: ClassVar[str] = "material"
    # 1: per-atom F, C_v, S; one supercell; no extrapolation
    revision: ClassVar[int] = 1
    bulk_only: ClassVar[bool] = True
    mixes_tasks: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        low, high = self.linear_strain
        if not -0.2 < low < 0 < high < 0.2:
            raise ValueError(
                f"{self.spec_key('linear_strain')} must be [low, high] with -0.2 < "
                f"low < 0 < high < 0.2, got {self.linear_strain}"
            )
        if self.n_volumes < 5:
            raise ValueError(
                f"{self.spec_key('n_volumes')} must be >= 5, got {self.n_volumes}"
            )
        grid = self.temperatures
        if grid.values is not None or grid.t_min != 0:
            raise ValueError(
                f"{self.spec_key('temperatures')}: the QHA needs a regular grid "
                "from 0 K: give t_max and t_step only"
            )
        if grid.t_max <= 300 or grid.t_step > grid.t_max / 10:
            raise ValueError(
                f"{self.spec_key('temperatures.t_max')} must exceed 300 K and "
                f"t_step be at most t_max/10; got t_max {grid.t_max}, t_step "
                f"{grid.t_step}"
            )
        if not self.pressures or any(p < 0 for p in self.pressures):
            raise ValueError(
                f"{self.spec_key('pressures')} must be >= 0 GPa, got {self.pressures}"
            )
        if self.eos not in EOS_NAMES:
            raise ValueError(
                f"{self.spec_key('eos')} must be vinet, birch_murnaghan or "
                f"murnaghan, got {self.eos!r}"
            )

    def targets(self, item, pot, task) -> list[Target]:
        """One document per pressure."""
        settings = maker_settings(self)
        settings.pop("pressures")
        return [
            Target(
                item.formula,
                item.structure_id,
                item.label,
                protocol(self.property, pot, task, settings, item.on, {"pressure": p}),
                {"pressure": p},
            )
            for p in self.pressures
        ]

    def strains(self) -> list[float]:
        """The lattice-vector strains of the sampled volumes."""
        return np.linspace(*self.linear_strain, self.n_volumes).round(8).tolist()

    def temperature_grid(self) -> np.ndarray:
        """K: 0, t_step, ..., t_max."""
        grid = self.temperatures
        return np.arange(0.0, grid.t_max + grid.t_step / 2, grid.t_step)

    def compute(self, items, targets, ctx):
        """Relax every volume of every item in one batch, then all displaced
        supercells in one batched prediction, then each QHA."""
        out = []
        phonons = volume_phonons(
            items, self.strains(), ctx, self.relax, self.phonon, shared=True
        )
        for it, owed, setup in zip(items, targets, phonons, strict=True):
            if isinstance(setup, str):
                kind = "InnerRelaxationError"
                out.append([self.failed(t, ctx, setup, error_type=kind) for t in owed])
                continue
            if isinstance(setup, Exception):
                out.append(setup)
                continue
            try:
                out.append(self._finish(it, owed, ctx, *setup))
            except Exception as err:  # one material's analysis fails alone
                out.append(err)
        return out

    def _finish(
        self, item, owed, ctx, cell, phonons, preds, results
    ) -> list[QhaDocument]:
        """Every quantity per atom: V, E and phonopy's F, C_v and S (which it
        gives per primitive cell) handed to ``PhonopyQHA``."""
        temperatures = self.temperature_grid()
        volumes, energies, common = volume_fields(item, cell, results)
        common = {"eos": self.eos, **common}
        fcs = force_constants(phonons, preds, volumes)
        if isinstance(fcs, tuple):
            why, kind = fcs
            return [self.failed(t, ctx, why, error_type=kind, **common) for t in owed]
        mesh = shared_mesh(phonons, self.phonon.mesh)
        free, cv, entropy, imaginary = [], [], [], []
        for p, fc, volume in zip(phonons, fcs, volumes, strict=True):
            run_mesh(p, fc, mesh)  # a shared object serves one volume at a time
            lowest = float(p.get_mesh_dict()["frequencies"].min())
            if lowest < self.phonon.imaginary_tol:
                imaginary.append(
                    {"volume": float(volume), "min_frequency": round(lowest, 4)}
                )
            p.run_thermal_properties(
                temperatures=temperatures, cutoff_frequency=CUTOFF_FREQUENCY
            )
            thermal = per_atom(p)
            free.append(thermal["free_energy"])
            cv.append(thermal["heat_capacity"])
            entropy.append(thermal["entropy"])
        if imaginary:
            where = ", ".join(
                f"{m['volume']:.3f} Å³/atom ({m['min_frequency']} THz)"
                for m in imaginary
            )
            why = (
                f"imaginary modes at {len(imaginary)} of {len(volumes)} volumes: "
                f"{where}; their free energies are not defined"
            )
            return [
                self.failed(
                    t,
                    ctx,
                    why,
                    error_type="ImaginaryModes",
                    imaginary_modes=imaginary,
                    **common,
                )
                for t in owed
            ]
        docs = []
        for target in owed:
            pressure = target.extra["pressure"]
            inputs = {
                "volumes": volumes,
                "electronic_energies": energies,
                "free_energy": np.array(free).T,
                "cv": np.array(cv).T,
                "entropy": np.array(entropy).T,
                "pressure": pressure,
                "eos": self.eos,
            }
            try:
                qha = PhonopyQHA(
                    **inputs, temperatures=temperatures, t_max=self.temperatures.t_max
                )
            except RuntimeError as err:  # phonopy's fit of F(V) failed
                why = (
                    f"at {pressure} GPa, phonopy's {self.eos} fit of G(V) failed: {err}"
                )
                docs.append(
                    self.failed(target, ctx, why, error_type="EosFitError", **common)
                )
                continue
            doc = self._document(target, ctx, qha, temperatures, volumes, common)
            if doc.state == "completed" and len(volumes) >= 7:
                self._range_check(doc, inputs, temperatures)
            docs.append(doc)
        return docs

    def _range_check(self, doc, inputs, temperatures) -> None:
        """Record α(300 K) from the 5 volumes nearest V(300 K) and warn
        where it differs from all volumes' by over RANGE_TOLERANCE."""
        alpha = doc.thermal_expansion_300k
        try:
            sub = subrange_alpha(inputs, temperatures, doc.volume_300k)
        except RuntimeError as err:  # phonopy's fit of the 5 volumes failed
            doc.warnings.append(
                f"at {doc.pressure} GPa, α(300 K) from the 5 volumes nearest "
                f"V(300 K) could not be fitted ({err}): its range dependence is "
                "unchecked"
            )
            return
        doc.thermal_expansion_300k_subrange = sub
        if abs(sub - alpha) > RANGE_TOLERANCE * abs(alpha):
            doc.warnings.append(
                f"at {doc.pressure} GPa, α(300 K) depends on the sampled range: "
                f"{alpha:.4g} 1/K from all {len(inputs['volumes'])} volumes, "
                f"{sub:.4g} 1/K from the 5 nearest V(300 K) "
                f"({abs(sub / alpha - 1):.0%} apart): the vibrational F(V) is not "
                f"one smooth EOS over {self.spec_key('linear_strain')} "
                f"{self.linear_strain}, and α is uncertain by about that much "
                "(compare a narrower range, e.g. [-0.01, 0.01], or the gruneisen "
                "property)"
            )

    def _document(self, target, ctx, qha, temperatures, sampled, common):
        """The completed document, its lists stopped where V(T) leaves the
        sampled volumes; failed if that is at or below 300 K."""
        pressure = target.extra["pressure"]
        volume = np.asarray(qha.volume_temperature)
        # phonopy's lists stop a step before t_max (finite differences), and
        # would leave out a temperature whose EOS fit failed
        n = len(volume)
        t_max = self.temperatures.t_max
        last = int(np.argmin(np.abs(temperatures - t_max)))
        if n != min(last + 2, len(temperatures)) - 1:
            why = (
                f"at {pressure} GPa, phonopy's QHA kept {n} of the temperatures "
                f"up to {t_max} K (an EOS fit left some out)"
            )
            return self.failed(target, ctx, why, error_type="EosFitError", **common)
        temps = temperatures[:n]
        low, high = float(sampled.min()), float(sampled.max())
        left = first_outside(volume, sampled)
        # alpha and C_p at T are finite differences over T's neighbours: keep
        # the temperatures whose neighbours lie inside too
        keep = n if left is None else max(left - 1, 0)
        at = int(np.argmin(np.abs(temps - 300.0)))
        warnings = []
        if left is not None:
            where = (
                f"at {pressure} GPa, V(T) lies outside the sampled volumes "
                f"[{low:.3f}, {high:.3f}] Å³/atom from {temps[left]:g} K "
                f"({volume[left]:.3f} Å³/atom)"
            )
            if keep <= at:
                why = (
                    f"{where}: the values at 300 K would be extrapolated; shift or "
                    f"widen {self.spec_key('linear_strain')} around this pressure's "
                    "volume"
                )
                return self.failed(
                    target,
                    ctx,
                    why,
                    error_type="VolumeOutOfRange",
                    t_max_valid=float(temps[keep - 1]) if keep else None,
                    **common,
                )
            warnings.append(f"{where}; the lists stop at {temps[keep - 1]:g} K")
        alpha = np.asarray(qha.thermal_expansion)[:keep]
        bulk = np.asarray(qha.bulk_modulus_temperature)[:keep]
        values = {
            "temperatures": temps[:keep].tolist(),
            "volume": volume[:keep].tolist(),
            "thermal_expansion": alpha.tolist(),
            "bulk_modulus": bulk.tolist(),
            "heat_capacity": np.asarray(qha.heat_capacity_P_numerical)[:keep].tolist(),
            "gibbs_free_energy": np.asarray(qha.gibbs_temperature)[:keep].tolist(),
            "thermal_expansion_300k": float(alpha[at]),
            "volume_300k": float(volume[at]),
            "bulk_modulus_300k": float(bulk[at]),
            "t_max_valid": float(temps[keep - 1]),
            "warnings": warnings,
        }
        plots = [self._plot(target, ctx, values)] if self.plot_dir else []
        return self.doc(target, ctx, state="completed", plots=plots, **common, **values)

    def _plot(self, target, ctx, values) -> str:
        plt, path = start_plot(self.plot_dir, f"{target.formula}_{target.key}_qha.png")
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
        ax1.plot(values["temperatures"], values["volume"])
        ax1.set_xlabel("temperature (K)")
        ax1.set_ylabel("volume (Å³/atom)")
        ax2.plot(values["temperatures"], np.asarray(values["thermal_expansion"]) * 1e6)
        ax2.set_xlabel("temperature (K)")
        ax2.set_ylabel("volumetric expansion (10⁻⁶/K)")
        fig.suptitle(
            f"{target.label}: QHA at {target.extra['pressure']} GPa, "
            f"{model_title(ctx, target)}"
        )
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return str(path)
