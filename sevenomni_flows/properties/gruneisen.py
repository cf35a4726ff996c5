"""Mode Grüneisen parameters and the Grüneisen thermal expansion.

Phonons at three volumes, ``V0 (1 - δ)``, ``V0``, ``V0 (1 + δ)`` about the
input cell's (scaled isotropically, positions relaxed at fixed cell, the
displaced supercells of every material in one batched prediction, as the
QHA does), give phonopy's mode Grüneisen parameters
``γ_i = -(V / ω_i) dω_i/dV`` on a q-mesh (``PhonopyGruneisen``).  With the
static bulk modulus ``B`` of the three energies, the volumetric thermal
expansion is (as atomate2's ``GruneisenMaker`` gives it)

``α_V(T) = Σ_i γ_i c_i(T) / (B V)``,

``c_i`` the heat capacity of mode ``i`` (mesh-weighted), the sum and ``V``
per atom: it is the first-order (low-temperature) limit of the QHA's
``(1/V) dV/dT``, without the volume's or ``B``'s change with temperature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final

import numpy as np
from phonopy import PhonopyGruneisen
from phonopy.physical_units import get_physical_units
from pydantic import Field

from ..jobs.calculation import PropertyMaker
from ..jobs.settings import PhononSettings, RelaxSettings, TemperatureGrid
from ..schemas import ResultDocument, bulky, quantity
from .phonon import CUTOFF_FREQUENCY
from .qha import force_constants, shared_mesh, volume_fields, volume_phonons

__all__ = [
    "EV_PER_A3_IN_GPA",
    "GruneisenDocument",
    "GruneisenMaker",
    "mode_heat_capacity",
    "thermal_expansion",
]

_UNITS = get_physical_units()
#: GPa in one eV/Å³.
EV_PER_A3_IN_GPA: Final[float] = _UNITS.EVAngstromToGPa
#: eV in the energy h·(1 THz).
_EV_PER_THZ: Final[float] = _UNITS.THzToEv
#: Boltzmann's constant, eV/K.
_KB: Final[float] = _UNITS.KB


def mode_heat_capacity(frequencies, temperature: float) -> np.ndarray:
    """The heat capacity of each harmonic mode (eV/K): ``k_B x² eˣ/(eˣ-1)²``,
    ``x = hν / k_B T``; zero at 0 K.  ``frequencies`` in THz, all > 0."""
    nu = np.asarray(frequencies, dtype=float)
    if temperature <= 0:
        return np.zeros_like(nu)
    x = nu * _EV_PER_THZ / (_KB * temperature)
    with np.errstate(over="ignore"):  # x > 700: e^x overflows, c_i -> 0
        ex = np.exp(-x)
        return _KB * x**2 * ex / (1.0 - ex) ** 2


def thermal_expansion(
    gamma, frequencies, weights, temperatures, volume: float, bulk_modulus: float
) -> tuple[np.ndarray, np.ndarray]:
    """The Grüneisen volumetric thermal expansion and the mean γ.

    Parameters
    ----------
    gamma, frequencies : (n_q, n_bands) arrays
        Mode Grüneisen parameters and frequencies (THz) of one primitive
        cell; only modes with frequency > ``CUTOFF_FREQUENCY`` are summed.
    weights : (n_q,) array
        The q-points' weights.
    temperatures : sequence of float
        K.
    volume : float
        Å³ per primitive cell.
    bulk_modulus : float
        eV/Å³.

    Returns
    -------
    alpha, mean_gamma : arrays over ``temperatures``
        ``α_V = Σ w γ c / (Σ w · B V)`` (1/K) and the heat-capacity weighted
        mean ``Σ w γ c / Σ w c`` (the thermodynamic Grüneisen parameter;
        NaN at 0 K).
    """
    gamma, nu = np.asarray(gamma), np.asarray(frequencies)
    w = np.broadcast_to(np.asarray(weights, dtype=float)[:, None], nu.shape)
    kept = nu > CUTOFF_FREQUENCY
    gamma, nu, w = gamma[kept], nu[kept], w[kept] / np.sum(weights)
    alpha, mean = [], []
    for t in temperatures:
        c = w * mode_heat_capacity(nu, t)  # eV/K per primitive cell
        alpha.append(np.sum(gamma * c) / (bulk_modulus * volume))
        mean.append(np.sum(gamma * c) / np.sum(c) if np.sum(c) > 0 else np.nan)
    return np.array(alpha), np.array(mean)


class GruneisenDocument(ResultDocument):
    """Mode Grüneisen parameters and the Grüneisen thermal expansion.

    Every value is intensive (per atom, or a ratio), whatever cell the input
    is written in: volumes and energies per atom, α and γ of the whole
    crystal.  The expansion is volumetric; a cubic crystal's linear
    expansion is a third of it.
    """

    property: str = "gruneisen"
    columns: ClassVar[tuple[str, ...]] = (
        "gruneisen_300k",
        "thermal_expansion_300k",
        "bulk_modulus",
    )
    temperatures: list[float] = quantity(
        "Temperatures; the lists below follow them", "K", default_factory=list
    )
    thermal_expansion: list[float] | None = quantity(
        "Volumetric thermal expansion Σ γ_i c_i / (B V)", "1/K"
    )
    gruneisen: list[float | None] | None = quantity(
        "Mean mode Grüneisen parameter weighted by heat capacity, Σ γ_i c_i / "
        "Σ c_i (None at 0 K)",
        "dimensionless",
    )
    thermal_expansion_300k: float | None = quantity(
        "Volumetric thermal expansion at 300 K", "1/K"
    )
    gruneisen_300k: float | None = quantity(
        "Heat-capacity weighted mean Grüneisen parameter at 300 K", "dimensionless"
    )
    gruneisen_high_t: float | None = quantity(
        "Mean mode Grüneisen parameter over the mesh (its high-temperature limit)",
        "dimensionless",
    )
    bulk_modulus: float | None = quantity(
        "Static bulk modulus V E''(V) of the parabola through the three energies",
        "GPa",
    )
    pressure: float | None = quantity(
        "Static pressure -E'(V) of the input cell, from the same parabola", "GPa"
    )
    volumes: list[float] = quantity(
        "Volumes the phonons were computed at (V0 - δV, V0, V0 + δV)",
        "Å³/atom",
        default_factory=list,
    )
    electronic_energies: list[float] = quantity(
        "Static energy at each volume, positions relaxed",
        "eV/atom",
        default_factory=list,
    )
    mesh: list[int] | None = Field(None, description="q-mesh of the primitive cell")
    mode_gruneisen: dict | None = bulky(
        "Irreducible q-mesh of the primitive cell at V0: qpoints (reduced), "
        "weights, frequencies (THz) and gamma (mode Grüneisen parameters), "
        "per q-point and band"
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
    warnings: list[str] = Field(
        default_factory=list, description="Modes left out of the sums"
    )


@dataclass
class GruneisenMaker(PropertyMaker):
    """Mode Grüneisen parameters (phonopy's ``PhonopyGruneisen``) and the
    Grüneisen thermal expansion.

    The input cell should be relaxed (zero pressure): ``V0`` is its volume,
    and a cell whose zero-pressure volume lies outside the sampled volumes
    fails.

    Parameters
    ----------
    volume_strain : float
        δ: the volumes are ``V0 (1 - δ)``, ``V0``, ``V0 (1 + δ)``.
    temperatures : TemperatureGrid
        K, any grid (``values``, or t_min, t_step, ..., t_max).
    phonon : PhononSettings
        As for :class:`~sevenomni_flows.jobs.phonon.PhononMaker`; one
        primitive cell, supercell and q-mesh at every volume.
    relax : RelaxSettings
        The fixed-cell relaxation of each volume (fmax in eV/Å).
    """

    name: str = "gruneisen"
    volume_strain: float = 0.01
    temperatures: TemperatureGrid = field(default_factory=TemperatureGrid)
    phonon: PhononSettings = field(default_factory=PhononSettings)
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.005, max_steps=300)
    )

    property: ClassVar[str] = "gruneisen"
    document: ClassVar[type] = GruneisenDocument
    stage: ClassVar[str] = "material"
    revision: ClassVar[int] = 0
    bulk_only: ClassVar[bool] = True
    mixes_tasks: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        if not 0.001 <= self.volume_strain <= 0.05:
            raise ValueError(
                f"{self.spec_key('volume_strain')} must lie in [0.001, 0.05] (a "
                f"fraction of the volume), got {self.volume_strain}"
            )

    @classmethod
    def invariance(cls):
        """Its entry of the same-crystal-same-answer harness
        (:mod:`sevenomni_flows.testing`): Si near 7net-0's zero pressure (at
        5.43 Å the Maker refuses it as not relaxed)."""
        from ase.build import bulk
        from pymatgen.io.ase import AseAtomsAdaptor

        from ..jobs.base import ModelSettings
        from ..testing.invariance import Entry
        from ..testing.invariance import Field as Compared

        settings = ModelSettings(model="7net-0", device="cpu")
        f32 = "float32 force constants at three volumes"
        return Entry(
            "gruneisen",
            fields={
                "thermal_expansion": Compared("intensive", 2e-7, f"1/K: {f32}"),
                "thermal_expansion_300k": Compared("intensive", 2e-7, "1/K: as above"),
                "gruneisen": Compared("intensive", 0.01, f32),
                "gruneisen_300k": Compared("intensive", 0.01, "as gruneisen"),
                "gruneisen_high_t": Compared("intensive", 0.01, "as gruneisen"),
                "bulk_modulus": Compared(
                    "intensive", 0.5, "GPa: float32 noise of ΔE ~ 1e-3 eV/atom"
                ),
                "pressure": Compared("intensive", 0.05, "GPa: as the bulk modulus"),
                "volumes": Compared("intensive", 1e-3, "Å³/atom: the same strains"),
                "electronic_energies": Compared(
                    "intensive", 1e-4, "eV/atom: relaxations stop below fmax"
                ),
            },
            skip={
                "temperatures": "an input or setting, not a result",
                "mesh": "the primitive cell's, from a length",
                "mode_gruneisen": "q-points in each primitive cell's basis",
                "imaginary_modes": "none in Si",
                "supercell_matrix": "compared by the phonon entry",
                "primitive_matrix": "in each input cell's basis",
                "warnings": "none for Si",
            },
            representations=("conventional", "supercell 2x1x1", "rotated", "permuted"),
            maker=lambda: cls(
                settings=settings,
                phonon={"min_length": 7.0, "mesh": 20.0},
                temperatures={"t_max": 400.0, "t_step": 100.0},
            ),
            material=lambda: AseAtomsAdaptor.get_structure(
                bulk("Si", "diamond", a=5.46)
            ),
            slow=False,
        )

    def strains(self) -> list[float]:
        """The lattice-vector strains of ``V0 (1 - δ)``, ``V0``, ``V0 (1 + δ)``."""
        d = self.volume_strain
        return [(1 - d) ** (1 / 3) - 1, 0.0, (1 + d) ** (1 / 3) - 1]

    def compute(self, items, targets, ctx):
        """Relax the three volumes of every item in one batch, then all
        displaced supercells in one batched prediction, then each item's
        Grüneisen parameters."""
        out = []
        phonons = volume_phonons(items, self.strains(), ctx, self.relax, self.phonon)
        for it, owed, setup in zip(items, targets, phonons, strict=True):
            name = it.structure.composition.reduced_formula
            name = f"{name} (label {it.label})" if it.label else name
            if isinstance(setup, str):
                kind = "InnerRelaxationError"
                why = f"{name}: {setup}"
                out.append([self.failed(t, ctx, why, error_type=kind) for t in owed])
                continue
            if isinstance(setup, Exception):
                out.append(setup)
                continue
            try:
                docs = [self.analyse(it, t, ctx, *setup) for t in owed]
            except Exception as err:  # one material's analysis fails alone
                out.append(err)
                continue
            for doc in docs:  # a guard's reason names the material
                if doc.state == "failed":
                    doc.error = f"{name}: {doc.error}"
            out.append(docs)
        return out

    def analyse(self, item, target, ctx, cell, phonons, preds, results):
        """The document of one material from its phonons at three volumes."""
        volumes, energies, common = volume_fields(item, cell, results)
        fcs = force_constants(phonons, preds, volumes)
        if isinstance(fcs, tuple):
            why, kind = fcs
            return self.failed(target, ctx, why, error_type=kind, **common)
        middle = phonons[1]
        mesh = shared_mesh(phonons, self.phonon.mesh)
        imaginary = []
        for p, volume in zip(phonons, volumes, strict=True):
            p.run_mesh(mesh, is_gamma_center=True)
            lowest = float(p.get_mesh_dict()["frequencies"].min())
            if lowest < self.phonon.imaginary_tol:
                imaginary.append(
                    {"volume": float(volume), "min_frequency": round(lowest, 4)}
                )
        if imaginary:
            where = ", ".join(
                f"{m['volume']:.3f} Å³/atom ({m['min_frequency']} THz)"
                for m in imaginary
            )
            why = (
                f"imaginary modes at {len(imaginary)} of 3 volumes: {where}; "
                "their Grüneisen parameters are not defined"
            )
            return self.failed(
                target,
                ctx,
                why,
                error_type="ImaginaryModes",
                imaginary_modes=imaginary,
                mesh=mesh,
                **common,
            )
        # static E(V): the parabola through three equally spaced volumes
        step = (volumes[2] - volumes[0]) / 2
        curvature = (energies[2] - 2 * energies[1] + energies[0]) / step**2
        bulk = volumes[1] * curvature  # eV/Å³
        pressure = -(energies[2] - energies[0]) / (2 * step) * EV_PER_A3_IN_GPA
        common |= {"mesh": mesh, "pressure": float(pressure)}
        if bulk <= 0:
            why = (
                f"E(V) is not convex about the input volume (B = "
                f"{bulk * EV_PER_A3_IN_GPA:.3g} GPa): the cell is not stable"
            )
            return self.failed(target, ctx, why, error_type="Unstable", **common)
        common["bulk_modulus"] = float(bulk * EV_PER_A3_IN_GPA)
        shift = pressure / common["bulk_modulus"]  # (V_eq - V0) / V0, to first order
        if abs(shift) > self.volume_strain:
            why = (
                f"the input cell is at {pressure:.3g} GPa: its zero-pressure volume "
                f"({shift:+.2%}) lies outside the sampled volumes "
                f"(±{self.volume_strain:.2%}); relax the cell first"
            )
            return self.failed(target, ctx, why, error_type="NotRelaxed", **common)
        grun = PhonopyGruneisen(middle, phonons[2], phonons[0])
        grun.set_mesh(mesh, is_gamma_center=True)
        qpoints, weights, frequencies, _, gamma = grun.get_mesh()
        n_prim = len(middle.primitive)
        temperatures = self.temperatures.kelvin()
        args = (gamma, frequencies, weights)
        volume = volumes[1] * n_prim
        alpha, mean = thermal_expansion(*args, temperatures, volume, bulk)
        alpha_300, mean_300 = thermal_expansion(*args, [300.0], volume, bulk)
        kept = frequencies > CUTOFF_FREQUENCY
        w = np.broadcast_to(np.asarray(weights, float)[:, None], gamma.shape)[kept]
        warnings = []
        left = int(np.sum(~kept)) - 3  # the three acoustic modes at Γ
        if left > 0:
            warnings.append(
                f"{left} modes besides the acoustic ones at Γ lie below "
                f"{CUTOFF_FREQUENCY} THz and are left out of the sums"
            )
        values = {
            "temperatures": temperatures,
            "thermal_expansion": alpha.tolist(),
            "gruneisen": [None if np.isnan(g) else float(g) for g in mean],
            "thermal_expansion_300k": float(alpha_300[0]),
            "gruneisen_300k": float(mean_300[0]),
            "gruneisen_high_t": float(np.sum(w * gamma[kept]) / np.sum(w)),
            "mode_gruneisen": {
                "qpoints": np.asarray(qpoints).tolist(),
                "weights": np.asarray(weights).tolist(),
                "frequencies": np.asarray(frequencies).tolist(),
                "gamma": np.asarray(gamma).tolist(),
            },
            "warnings": warnings,
        }
        return self.doc(target, ctx, state="completed", **common, **values)
