"""Lattice thermal conductivity with phono3py: fc2 and fc3 in one batch.

Every material's displaced supercells (pairs of displacements for fc3,
single ones for fc2 when ``phonon_supercell`` asks for its own cell) are
evaluated in one batched prediction; phono3py then builds the force
constants, checks the harmonic phonons on the q-mesh for imaginary modes and
solves the phonon Boltzmann equation, in the relaxation-time approximation
(``rta``) or directly (``lbte``).

Force constants are stored in the data store in phono3py's *compact* form,
``fc2`` of shape (n_primitive, n_supercell, 3, 3) and ``fc3`` of shape
(n_primitive, n_supercell, n_supercell, 3, 3, 3): the full arrays repeat the
primitive cell's rows ``n_supercell / n_primitive`` times.  Each is packed
by :func:`pack_array` (raw bytes, zlib, base64; ``fc2`` in float64, ``fc3``
in float32, whose 7 digits are well below the force noise of a finite
displacement) and read back by :func:`unpack_array`.  For Si in a 64-atom
supercell fc3 packs to under 1 MB.  A packed fc3 larger than
:data:`MAX_PACKED_BYTES` (above which a data store on plain MongoDB, 16 MB
per document, would refuse it) is left out, and ``fc3_bytes`` says its size.
"""

from __future__ import annotations

import base64
import contextlib
import io
import zlib
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal

import numpy as np
from phono3py import Phono3py
from pydantic import Field

from ..jobs.base import Target, maker_settings, protocol
from ..jobs.calculation import PropertyMaker, model_title
from ..jobs.plots import start_plot
from ..jobs.settings import (
    PhononSettings,
    Positive,
    Supercell,
    TemperatureGrid,
    accepts_old_names,
    check_supercell,
)
from ..schemas import ResultDocument, bulky, failure_type, quantity
from .phonon import PhononCell, drift_free, phonon_cell, to_ase
from .relax import per_cell

__all__ = [
    "FC3_ZERO",
    "MAX_PACKED_BYTES",
    "ThermalConductivityDocument",
    "ThermalConductivityMaker",
    "pack_array",
    "tensor_from_voigt",
    "unpack_array",
]

#: Largest packed fc3 kept in a document, bytes (MongoDB refuses documents
#: over 16 MB; GridFS and S3 data stores would not).
MAX_PACKED_BYTES: Final[int] = 12 * 2**20


#: eV/Å³: an fc3 whose elements are all smaller is zero (real ones are
#: ~1-20 eV/Å³; float32 force noise alone gives ~1e-3).
FC3_ZERO: Final[float] = 1e-6

#: How the Boltzmann equation is solved: relaxation-time approximation, or
#: directly (linearised).
Method = Literal["rta", "lbte"]


def pack_array(array, dtype: str = "float64") -> dict:
    """An array as a JSON-safe dict: shape, dtype and its zlib-compressed
    bytes in base64.

    >>> packed = pack_array(np.eye(2), "float32")
    >>> unpack_array(packed).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    arr = np.ascontiguousarray(array, dtype=dtype)
    data = base64.b64encode(zlib.compress(arr.tobytes(), 6)).decode("ascii")
    return {
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "encoding": "zlib+base64",
        "data": data,
    }


def unpack_array(packed: dict) -> np.ndarray:
    """The array :func:`pack_array` packed."""
    raw = zlib.decompress(base64.b64decode(packed["data"]))
    return np.frombuffer(raw, dtype=packed["dtype"]).reshape(packed["shape"])


def tensor_from_voigt(kappa) -> np.ndarray:
    """3x3 tensors from phono3py's six components (xx, yy, zz, yz, xz, xy),
    for an array whose last axis holds them."""
    k = np.asarray(kappa, dtype=float)
    xx, yy, zz, yz, xz, xy = np.moveaxis(k, -1, 0)
    rows = [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]
    return np.moveaxis(np.array(rows), (0, 1), (-2, -1))


class ThermalConductivityDocument(ResultDocument):
    """Lattice thermal conductivity κ(T) from phono3py (phonon-phonon
    scattering, plus isotopes when asked)."""

    property: str = "thermal_conductivity"
    columns: ClassVar[tuple[str, ...]] = ("kappa_300k", "method", "mesh")
    method: str | None = Field(None, description="rta or lbte (Boltzmann solution)")
    temperatures: list[float] = quantity(
        "Temperatures; the lists below follow them", "K", default_factory=list
    )
    kappa: list[list[list[float]]] | None = quantity(
        "Thermal conductivity tensor (3x3) at each temperature", "W/m/K"
    )
    kappa_average: list[float] | None = quantity(
        "A third of the trace of kappa at each temperature", "W/m/K"
    )
    kappa_300k: float | None = quantity(
        "A third of the trace of kappa at 300 K", "W/m/K"
    )
    isotope: bool | None = Field(None, description="Isotope scattering included")
    mesh: list[int] | None = Field(None, description="q-point mesh of the solution")
    supercell_matrix: list[list[int]] | None = Field(
        None,
        description="Supercell of fc3 (and of fc2 without phonon_supercell), in "
        "the primitive cell's basis",
    )
    phonon_supercell_matrix: list[list[int]] | None = Field(
        None, description="Supercell of fc2, if its own, in the primitive cell's basis"
    )
    primitive_matrix: list[list[float]] | None = Field(
        None, description="Primitive cell in the input cell's basis"
    )
    n_supercells: int | None = Field(
        None, description="Displaced supercells evaluated (fc3, then fc2)"
    )
    min_frequency: float | None = quantity("Lowest frequency on the q-mesh", "THz")
    imaginary_modes: list[dict] = Field(
        default_factory=list,
        description="The q-points (reduced coordinates) with the lowest "
        "frequencies below imaginary_tol, and those frequencies (THz)",
    )
    fc3_bytes: int | None = quantity("Size of the packed fc3", "bytes")
    fc2: dict | None = bulky(
        "Compact fc2 (n_primitive, n_supercell, 3, 3), eV/Å², packed: see "
        "thermal_conductivity.unpack_array"
    )
    fc3: dict | None = bulky(
        "Compact fc3 (n_primitive, n_supercell, n_supercell, 3, 3, 3), eV/Å³, "
        "float32, packed: see thermal_conductivity.unpack_array"
    )


@accepts_old_names
@dataclass
class ThermalConductivityMaker(PropertyMaker):
    """Lattice thermal conductivity κ(T): phono3py on batched forces.

    Parameters
    ----------
    phonon : PhononSettings
        ``supercell``: of the input cell for the fc3 displacements (default:
        from ``min_length``, Å: the diagonal supercell of the standardized
        primitive cell whose lattice vectors are each at least this long,
        whatever cell the input is written in,
        :func:`~sevenomni_flows.properties.phonon.phonon_cell`); ``displacement``
        (Å, phono3py's default 0.03); ``mesh``: q-point mesh, or a length
        (Å) phono3py turns into one (35 gives 11x11x11 for Si, the phono3py
        example's mesh; converge it); ``imaginary_tol``: THz, a frequency
        below this on the q-mesh fails the material.
    phonon_supercell : 3x3 list, optional
        A separate (larger) supercell of the input cell for fc2; by default
        fc2 comes from the fc3 supercell's forces (or from
        ``phonon_min_length``).
    phonon_min_length : float, optional
        Å: the fc2 supercell from a length, as ``phonon.min_length``.
    cutoff_pair_distance : float, optional
        Å: displacement pairs further apart are not computed (their fc3
        elements are zero).
    temperatures : TemperatureGrid
        K: a list, or ``t_min (> 0), t_min + t_step, ..., t_max``.  300 K is
        always added (for ``kappa_300k``).
    method : "rta" or "lbte"
        Relaxation-time approximation, or the direct solution of the
        linearised Boltzmann equation (slower, more memory).
    isotope : bool
        Add isotope scattering (natural abundances).
    symmetrize : bool
        Impose translational and permutation symmetry on fc2 and fc3
        (phono3py ``--sym-fc``); without it, small violations scatter
        the acoustic modes near Γ far too strongly.
    plot_dir : str, optional
        Folder for the PNG of κ(T).
    """

    name: str = "thermal_conductivity"
    phonon: PhononSettings = field(
        default_factory=lambda: PhononSettings(displacement=0.03, mesh=35.0)
    )
    phonon_supercell: Supercell | None = None
    phonon_min_length: Positive | None = None
    cutoff_pair_distance: Positive | None = None
    temperatures: TemperatureGrid = field(
        default_factory=lambda: TemperatureGrid(t_min=100.0, t_step=50.0)
    )
    method: Method = "rta"
    isotope: bool = False
    symmetrize: bool = True
    plot_dir: str | None = None

    property: ClassVar[str] = "thermal_conductivity"
    document: ClassVar[type] = ThermalConductivityDocument
    stage: ClassVar[str] = "material"
    # 1: one supercell for every cell
    revision: ClassVar[int] = 1
    bulk_only: ClassVar[bool] = True
    mixes_tasks: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        if self.phonon_supercell is not None:
            try:
                self.phonon_supercell = check_supercell(self.phonon_supercell)
            except ValueError as err:
                raise ValueError(f"{self.spec_key('phonon_supercell')} {err}") from None
        for name in ("phonon_min_length", "cutoff_pair_distance"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(
                    f"{self.spec_key(name)} must be > 0 Å or null, got {value}"
                )
        if min(self.temperatures.kelvin()) <= 0:
            raise ValueError(
                f"{self.spec_key('temperatures')}: give temperatures > 0 K"
            )
        if self.method not in ("rta", "lbte"):
            raise ValueError(
                f"{self.spec_key('method')} must be rta or lbte, got {self.method!r}"
            )

    def temperature_list(self) -> list[float]:
        """The temperatures computed, K: sorted, 300 K included."""
        temps = self.temperatures.kelvin()
        return sorted({round(float(t), 6) for t in [*temps, 300.0]})

    def targets(self, item, pot, task) -> list[Target]:
        """One document; its key holds the temperatures computed, not how
        they were asked for, and no length a given supercell overrides."""
        settings = maker_settings(self)
        for name in ("t_min", "t_max", "t_step"):
            settings.pop(name)
        settings["temperatures"] = self.temperature_list()
        if self.phonon.supercell is not None:
            settings.pop("min_length")
        if self.phonon_supercell is not None:
            settings.pop("phonon_min_length")
        proto = protocol(self.property, pot, task, settings, item.on)
        return [Target(item.formula, item.structure_id, item.label, proto)]

    def phono3py(self, structure) -> tuple[PhononCell, Phono3py]:
        """The primitive cell and fc3 supercell of ``structure``, and a
        Phono3py object of them, its fc3 (and fc2) displacements generated."""
        ph = self.phonon
        cell = phonon_cell(structure, ph.min_length, ph.supercell)
        fc2_matrix = None
        if self.phonon_supercell is not None or self.phonon_min_length is not None:
            fc2_matrix = phonon_cell(
                structure,
                self.phonon_min_length or ph.min_length,
                self.phonon_supercell,
            ).supercell_matrix
        if fc2_matrix == cell.supercell_matrix:
            fc2_matrix = None  # the fc3 supercell's forces give fc2
        ph3 = Phono3py(
            cell.unit(structure),
            supercell_matrix=cell.supercell_matrix,
            phonon_supercell_matrix=fc2_matrix,
        )
        ph3.generate_displacements(
            distance=ph.displacement, cutoff_pair_distance=self.cutoff_pair_distance
        )
        return cell, ph3  # with fc2_matrix, its fc2 displacements (phono3py's)

    def compute(self, items, targets, ctx):
        """Displace every item; the fc3 and fc2 supercells of all of them in
        one batched prediction; then each material's κ."""
        from sevenomni_core.batch import predict

        setups = []
        for it in items:
            try:
                setups.append(self.phono3py(it.structure))
            except Exception as err:  # phono3py may refuse one structure
                setups.append(err)
        cells = [_displaced(s[1]) if isinstance(s, tuple) else ([], []) for s in setups]
        flat = [a for fc3, fc2 in cells for a in (*fc3, *fc2)]
        groups = [[*fc3, *fc2] for fc3, fc2 in cells]
        tasks = per_cell(groups, [it.task for it in items])
        preds = predict(flat, model=ctx.pot, task=tasks) if flat else []
        out, start = [], 0
        for it, (target,), setup, (fc3, fc2) in zip(
            items, targets, setups, cells, strict=True
        ):
            preds3 = preds[start : start + len(fc3)]
            preds2 = preds[start + len(fc3) : start + len(fc3) + len(fc2)]
            start += len(fc3) + len(fc2)
            if isinstance(setup, Exception):
                out.append(setup)
                continue
            cell, ph3 = setup
            errors = [p.error for p in (*preds3, *preds2) if not p.ok]
            if errors:
                why = f"a displaced supercell failed: {errors[0]}"
                error_type = failure_type(errors[0])
                out.append([self.failed(target, ctx, why, error_type=error_type)])
                continue
            try:
                self._force_constants(ph3, preds3, preds2)
                out.append(
                    [self._finish(it, target, ctx, cell, ph3, len(fc3) + len(fc2))]
                )
            except Exception as err:  # one material's analysis fails alone
                out.append(err)
        return out

    def _force_constants(self, ph3: Phono3py, preds3, preds2) -> None:
        """Compact fc3 (and fc2) from the forces of the displaced supercells."""
        included = [c is not None for c in ph3.supercells_with_displacements]
        forces = np.zeros((len(included), len(ph3.supercell), 3))
        forces[np.flatnonzero(included)] = drift_free(preds3)
        ph3.forces = forces  # pairs beyond the cutoff keep zero forces
        ph3.produce_fc3(symmetrize_fc3r=self.symmetrize, is_compact_fc=True)
        if preds2:  # fc2 from its own supercell (else produce_fc3 made it)
            ph3.phonon_forces = drift_free(preds2)
            ph3.produce_fc2(symmetrize_fc2=self.symmetrize, is_compact_fc=True)

    def _finish(
        self, item, target, ctx, cell: PhononCell, ph3: Phono3py, n_supercells: int
    ):
        ph3.mesh_numbers = self.phonon.mesh
        quiet = io.StringIO()  # phono3py prints its warnings
        with contextlib.redirect_stdout(quiet):
            ph3.init_phph_interaction()
            ph3.run_phonon_solver()
        freqs, _, addresses = ph3.get_phonon_data()
        mesh = np.asarray(ph3.mesh_numbers)
        fc3 = pack_array(ph3.fc3, "float32")
        fc3_bytes = len(fc3["data"])
        common = {
            "input_structure": item.structure,
            "method": self.method,
            "isotope": self.isotope,
            "mesh": mesh.astype(int).tolist(),
            "supercell_matrix": np.asarray(ph3.supercell_matrix).astype(int).tolist(),
            "phonon_supercell_matrix": None
            if ph3.phonon_supercell_matrix is None
            else np.asarray(ph3.phonon_supercell_matrix).astype(int).tolist(),
            "primitive_matrix": cell.primitive_matrix,
            "n_supercells": n_supercells,
            "min_frequency": float(freqs.min()),
            "fc2": pack_array(ph3.fc2, "float64"),
            "fc3": fc3 if fc3_bytes <= MAX_PACKED_BYTES else None,
            "fc3_bytes": fc3_bytes,
        }
        imaginary = _imaginary(freqs, addresses / mesh, self.phonon.imaginary_tol)
        if imaginary:
            lowest = imaginary[0]
            why = (
                f"imaginary modes: {lowest['frequency']} THz at q = "
                f"{lowest['q']} (reduced), below imaginary_tol "
                f"{self.phonon.imaginary_tol} THz on the {'x'.join(map(str, mesh))} "
                "mesh; phonon lifetimes and kappa are not defined"
            )
            return self.failed(
                target,
                ctx,
                why,
                error_type="ImaginaryModes",
                imaginary_modes=imaginary,
                **common,
            )
        largest = float(np.abs(ph3.fc3).max())
        if largest < FC3_ZERO:
            why = (
                f"fc3 vanishes in this supercell (largest element {largest:.1e} "
                "eV/Å³): the pair displacements cancel by symmetry, so no mode "
                "scatters and kappa is infinite; use a larger supercell"
            )
            return self.failed(target, ctx, why, error_type="VanishingFc3", **common)
        temps = self.temperature_list()
        with contextlib.redirect_stdout(quiet):
            ph3.run_thermal_conductivity(
                is_LBTE=self.method == "lbte",
                temperatures=temps,
                is_isotope=self.isotope,
            )
        tensors = tensor_from_voigt(np.asarray(ph3.thermal_conductivity.kappa)[0])
        average = np.trace(tensors, axis1=-2, axis2=-1) / 3.0
        if not np.isfinite(tensors).all():
            why = f"phono3py gave a non-finite kappa: {average.tolist()} W/m/K"
            return self.failed(target, ctx, why, error_type="NonFiniteKappa", **common)
        values = {
            "temperatures": temps,
            "kappa": tensors.tolist(),
            "kappa_average": average.tolist(),
            "kappa_300k": float(average[temps.index(300.0)]),
        }
        plots = [self._plot(target, ctx, values)] if self.plot_dir else []
        return self.doc(target, ctx, state="completed", plots=plots, **common, **values)

    def _plot(self, target, ctx, values) -> str:
        plt, path = start_plot(
            self.plot_dir, f"{target.formula}_{target.key}_kappa.png"
        )
        temps = values["temperatures"]
        tensors = np.asarray(values["kappa"])
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.plot(temps, values["kappa_average"], label="trace / 3")
        for i, axis in enumerate("xyz"):
            ax.plot(temps, tensors[:, i, i], "--", lw=0.8, label=f"{axis}{axis}")
        ax.set_xlabel("temperature (K)")
        ax.set_ylabel("κ (W/m/K)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.set_title(
            f"{target.label}: κ ({self.method.upper()}), {model_title(ctx, target)}",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return str(path)


def _displaced(ph3: Phono3py) -> tuple[list, list]:
    """The fc3 supercells (pairs beyond the cutoff left out) and the fc2
    ones (if fc2 has its own supercell), as ASE atoms."""
    fc3 = [to_ase(c) for c in ph3.supercells_with_displacements if c is not None]
    fc2 = (
        [to_ase(c) for c in ph3.phonon_supercells_with_displacements]
        if ph3.phonon_supercell_matrix is not None
        else []
    )
    return fc3, fc2


def _imaginary(freqs, qpoints, tol: float, keep: int = 5) -> list[dict]:
    """The (up to ``keep``) q-points whose lowest frequency is below ``tol``."""
    lowest = freqs.min(axis=1)
    order = [i for i in np.argsort(lowest) if lowest[i] < tol][:keep]
    return [
        {
            "q": [round(float(x), 4) for x in qpoints[i]],
            "frequency": round(float(lowest[i]), 4),
        }
        for i in order
    ]
