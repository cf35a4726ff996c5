"""Batched molecular dynamics: many independent systems, one forward pass per step.

Every system keeps its own ensemble, temperature, time step, length and
random stream, and all active systems are evaluated together at each step;
a system that finishes or blows up leaves the batch and the next one takes
its place.  The integrators and conventions are ASE's, system by system:

- ``"nve"``: velocity Verlet, as ASE's ``VelocityVerlet``;
- ``"nvt"``: Langevin dynamics, the Vanden-Eijnden–Ciccotti propagator of
  ASE's ``Langevin`` (``fixcm=False``), with the same random draws, so that
  one generator gives ASE's trajectory;
- ``"npt"``: the Langevin thermostat above plus a barostat that rescales
  the cell, positions and momenta after each step.  The default,
  ``barostat="crescale"``, is stochastic cell rescaling (Bernetti and Bussi,
  J. Chem. Phys. 153, 114107 (2020)), isotropic: a first-order relaxation
  of ln V like Berendsen's plus the noise that makes it sample the
  isothermal-isobaric ensemble, volume fluctuations included.
  ``"isotropic"`` is Berendsen's rule (ASE's ``NPTBerendsen``) and
  ``"full"`` Berendsen by the symmetric pressure tensor (all six cell
  components, for relaxing shear); both give the right mean volume but
  suppress its fluctuations.

Units are ASE's: Å, eV, fs for inputs, K, GPa.  Initial momenta come from
the structure when it carries them, else from a Maxwell–Boltzmann draw at
the system's temperature (ASE's ``thermalize_momenta``: the draw, then the
centre-of-mass motion removed at constant temperature); fixed atoms
(``FixAtoms``) never move.  Temperatures count 3 degrees of freedom per free
atom, as ``Atoms.get_temperature``; pressures include the kinetic term, as
``get_stress(include_ideal_gas=True)``.

A system stops alone, with its reason in ``error``, when its energy or
forces are not finite, a force exceeds
:data:`~sevenomni_core.batch.guards.DIVERGED_FORCE`, two atoms come closer
than ``min_distance``, or (NVE) its total energy drifts by more than
``max_energy_drift`` eV/atom from the start: the marks of a time step that
is too long or of a model driven where it has no data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io.trajectory import Trajectory
from ase.stress import voigt_6_to_full_3x3_stress

from ..data import MIN_DISTANCE, atoms_to_graph
from ..model.potential import Potential, as_potential
from ..options import BAROSTATS, ENSEMBLES
from .guards import DIVERGED_FORCE, fixed_mask, too_close
from .inputs import labels, per_structure, prepare
from .predict import Prediction, evaluate_graphs
from .sizing import structures_per_batch

__all__ = ["BAROSTATS", "ENSEMBLES", "MDResult", "md"]


@dataclass
class MDResult:
    """The outcome of one MD run; series are sampled every ``interval`` steps.

    Attributes
    ----------
    atoms : ase.Atoms or None
        The last state, with momenta and its energy, forces and stress.
    steps : int
        Steps taken (fewer than asked when the run stopped).
    time : numpy.ndarray
        Sample times, fs.
    potential_energy, kinetic_energy : numpy.ndarray
        eV, per sample.
    temperature : numpy.ndarray
        K, per sample.
    pressure : numpy.ndarray or None
        GPa, virial plus kinetic, per sample; None without a periodic cell.
    volume : numpy.ndarray or None
        Å³, per sample; None without a periodic cell.
    positions : numpy.ndarray
        ``(samples, N, 3)`` Å, unwrapped (for displacements and the MSD).
    cells : numpy.ndarray
        ``(samples, 3, 3)`` Å, the cell at each sample.
    trajectory : str or None
        The ASE trajectory file written, if any.
    error : str or None
        Why the run stopped early (bad input, or a blow-up with its rule).
    """

    atoms: Atoms | None = None
    steps: int = 0
    time: np.ndarray = field(default_factory=lambda: np.zeros(0))
    potential_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    kinetic_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    temperature: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pressure: np.ndarray | None = None
    volume: np.ndarray | None = None
    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))
    cells: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    trajectory: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the run went the whole length."""
        return self.error is None


@dataclass
class _Run:
    """One system's dynamics state."""

    index: int
    atoms: Atoms
    graph: dict
    task_index: int
    ensemble: str
    temperature: float  # K
    dt: float  # ASE time units
    n_steps: int
    friction: float  # 1 / ASE time
    rng: np.random.Generator
    fixed: np.ndarray
    masses: np.ndarray = field(init=False)
    steps: int = 0
    rnd_vel: np.ndarray | None = None
    energy0: float | None = None
    samples: dict = field(default_factory=dict)
    writer: Any = None
    path: str | None = None

    def __post_init__(self):
        self.masses = self.atoms.get_masses()[:, None]
        self.dof = 3 * int((~self.fixed).sum())
        self.periodic = bool(self.atoms.pbc.all())
        self.volume0 = self.atoms.get_volume() if self.periodic else 0.0
        kt = units.kB * self.temperature
        fr, dt = self.friction, self.dt
        sigma = np.sqrt(2 * kt * fr / self.masses)
        self.c1 = dt / 2.0 - dt * dt * fr / 8.0
        self.c2 = dt * fr / 2 - dt * dt * fr * fr / 8.0
        self.c3 = np.sqrt(dt) * sigma / 2.0 - dt**1.5 * fr * sigma / 8.0
        self.c5 = dt**1.5 * sigma / (2 * np.sqrt(3))
        self.c4 = fr / 2.0 * self.c5

    @property
    def momenta(self) -> np.ndarray:
        return self.atoms.arrays["momenta"]

    def kinetic(self) -> float:
        return float(0.5 * (self.momenta**2 / self.masses).sum())

    def temperature_now(self) -> float:
        return 2 * self.kinetic() / (max(self.dof, 1) * units.kB)

    def pressure_tensor(self, stress: np.ndarray) -> np.ndarray:
        """Virial plus kinetic pressure, 3x3, eV/Å³, from the Voigt stress."""
        return -(voigt_6_to_full_3x3_stress(stress) + self.kinetic_stress())

    def kinetic_stress(self) -> np.ndarray:
        """ASE's ideal-gas stress, 3x3, eV/Å³."""
        p = self.momenta
        return -(p.T @ (p / self.masses)) / self.atoms.get_volume()


def _initial_momenta(run: _Run) -> None:
    """The structure's momenta, else ASE's ``thermalize_momenta`` with ``rng``."""
    atoms = run.atoms
    if atoms.has("momenta") and np.abs(atoms.get_momenta()).max() > 0:
        p = atoms.get_momenta()
    else:
        kt = units.kB * run.temperature
        xi = run.rng.standard_normal((len(atoms), 3))
        p = xi * np.sqrt(run.masses * kt)
        if not run.fixed.any() and len(atoms) > 1:  # ASE's Stationary
            t0 = _temperature(p, run.masses, 3 * len(atoms))
            p = p - p.sum(axis=0) / run.masses.sum() * run.masses
            t1 = _temperature(p, run.masses, 3 * len(atoms))
            if t1 > 0:
                p = p * np.sqrt(t0 / t1)
    p = p.copy()
    p[run.fixed] = 0.0
    atoms.set_momenta(p, apply_constraint=False)


def _temperature(p: np.ndarray, masses: np.ndarray, dof: int) -> float:
    return float((p**2 / masses).sum() / (dof * units.kB))


def _first_half(run: _Run, forces: np.ndarray) -> None:
    """Half a kick and the drift, up to the next force evaluation."""
    atoms, m = run.atoms, run.masses
    x = atoms.positions.copy()
    if run.ensemble == "nve":
        p = run.momenta + 0.5 * run.dt * forces
        new = x + run.dt * p / m
        new[run.fixed] = x[run.fixed]
        p[run.fixed] = 0.0
        atoms.positions = new
        atoms.set_momenta(p, apply_constraint=False)
        return
    n = len(atoms)
    xi = run.rng.standard_normal(size=(n, 3))
    eta = run.rng.standard_normal(size=(n, 3))
    rnd_pos = run.c5 * eta
    run.rnd_vel = run.c3 * xi - run.c4 * eta
    v = run.momenta / m
    v = v + (run.c1 * forces / m - run.c2 * v + run.rnd_vel)
    new = x + run.dt * v + rnd_pos
    new[run.fixed] = x[run.fixed]
    v = (new - x - rnd_pos) / run.dt
    atoms.positions = new
    atoms.set_momenta(v * m, apply_constraint=False)


def _second_half(run: _Run, forces: np.ndarray) -> None:
    """The kick that completes a step, from the new forces."""
    m = run.masses
    if run.ensemble == "nve":
        p = run.momenta + 0.5 * run.dt * forces
    else:
        v = run.momenta / m
        v = v + (run.c1 * forces / m - run.c2 * v + run.rnd_vel)
        p = v * m
    p[run.fixed] = 0.0
    run.atoms.set_momenta(p, apply_constraint=False)


def _berendsen(
    run: _Run, stress: np.ndarray, pressure: float, taup: float, beta: float, full: bool
) -> None:
    """Rescale cell and positions towards ``pressure`` (eV/Å³)."""
    p_tensor = run.pressure_tensor(stress)
    rate = beta * run.dt / taup
    if full:
        mu = np.eye(3) - rate / 3.0 * (pressure * np.eye(3) - p_tensor)
        mu = 0.5 * (mu + mu.T)
    else:
        scalar = 1.0 - rate * (pressure - np.trace(p_tensor) / 3.0)
        mu = np.eye(3) * np.cbrt(scalar)
    atoms = run.atoms
    atoms.set_cell(atoms.cell.array @ mu.T, scale_atoms=False)
    atoms.positions = atoms.positions @ mu.T


def _crescale(
    run: _Run, stress: np.ndarray, pressure: float, taup: float, beta: float
) -> None:
    """One step of isotropic stochastic cell rescaling towards ``pressure``.

    ``d eps = -(beta/taup) (P0 - P) dt + sqrt(2 kT beta dt/(V taup)) R``
    with ``eps = ln V`` and ``P`` the instantaneous pressure, kinetic term
    included (Bernetti and Bussi 2020; GROMACS's isotropic C-rescale); lengths
    scale by ``exp(d eps/3)`` and momenta by its inverse.  The ``kT/V`` drift
    of the paper's equation for ``V`` itself is absent here: Ito's rule for
    ``ln V`` cancels it, and keeping it would sample ``V^(N+1) exp(-P0 V/kT)``
    instead of ``V^N exp(-P0 V/kT)`` (an ideal gas's mean volume ``(N+2) kT/P0``
    instead of ``(N+1) kT/P0``).
    """
    atoms = run.atoms
    volume = atoms.get_volume()
    p_int = np.trace(run.pressure_tensor(stress)) / 3
    kt = units.kB * run.temperature
    drift = -beta / taup * (pressure - p_int) * run.dt
    noise = np.sqrt(2 * kt * beta * run.dt / (volume * taup)) * run.rng.normal()
    scale = np.exp((drift + noise) / 3.0)
    atoms.set_cell(atoms.cell.array * scale, scale_atoms=False)
    atoms.positions = atoms.positions * scale
    atoms.set_momenta(run.momenta / scale, apply_constraint=False)


def _sample(run: _Run, pred: Prediction) -> None:
    """Record the state (and write a trajectory frame)."""
    s = run.samples
    s.setdefault("time", []).append(run.steps * run.dt / units.fs)
    s.setdefault("potential_energy", []).append(pred.energy)
    s.setdefault("kinetic_energy", []).append(run.kinetic())
    s.setdefault("temperature", []).append(run.temperature_now())
    s.setdefault("positions", []).append(run.atoms.positions.copy())
    s.setdefault("cells", []).append(run.atoms.cell.array.copy())
    if run.periodic and pred.stress is not None:
        pressure = np.trace(run.pressure_tensor(pred.stress)) / 3.0
        s.setdefault("pressure", []).append(pressure / units.GPa)
        s.setdefault("volume", []).append(run.atoms.get_volume())
    if run.writer is not None:
        frame = run.atoms.copy()
        frame.calc = SinglePointCalculator(frame, **_calc_results(pred))
        run.writer.write(frame)


def _calc_results(pred: Prediction) -> dict:
    out = {"energy": pred.energy, "free_energy": pred.energy, "forces": pred.forces}
    if pred.stress is not None:
        out["stress"] = pred.stress
    return out


def _result(run: _Run, pred: Prediction | None, error: str | None) -> MDResult:
    if run.writer is not None:
        run.writer.close()
    s = run.samples
    atoms = run.atoms.copy()
    if pred is not None and pred.ok:
        atoms.calc = SinglePointCalculator(atoms, **_calc_results(pred))

    def arr(key):
        return np.asarray(s[key]) if key in s else None

    return MDResult(
        atoms=atoms,
        steps=run.steps,
        time=arr("time") if "time" in s else np.zeros(0),
        potential_energy=arr("potential_energy") if s else np.zeros(0),
        kinetic_energy=arr("kinetic_energy") if s else np.zeros(0),
        temperature=arr("temperature") if s else np.zeros(0),
        pressure=arr("pressure"),
        volume=arr("volume"),
        positions=arr("positions") if s else np.zeros((0, len(atoms), 3)),
        cells=arr("cells") if s else np.zeros((0, 3, 3)),
        trajectory=run.path,
        error=error,
    )


def _blown_up(run: _Run, pred: Prediction, max_energy_drift: float) -> str | None:
    """Why ``run`` must stop at this state, or None."""
    where = f"step {run.steps}"
    if not pred.ok:
        return pred.error
    if not np.isfinite(pred.energy) or not np.isfinite(pred.forces).all():
        return f"blew up at {where}: non-finite energy or forces"
    if np.abs(pred.forces).max() > DIVERGED_FORCE:
        return f"blew up at {where}: forces above {DIVERGED_FORCE:g} eV/Å"
    total = pred.energy + run.kinetic()
    if run.energy0 is None:
        run.energy0 = total
    drift = abs(total - run.energy0) / len(run.atoms)
    if run.ensemble == "nve" and drift > max_energy_drift:
        return (
            f"blew up at {where}: total energy drifted {drift:.3g} eV/atom "
            f"(limit {max_energy_drift:g} eV/atom); shorten the time step"
        )
    return None


def _check(name: str, label: str, value: float, low: float, strict: bool = True):
    bad = value <= low if strict else value < low
    if bad or not np.isfinite(value):
        sign = ">" if strict else ">="
        raise ValueError(f"{label}: {name} must be {sign} {low:g}, got {value}")


def _file_name(label: str, index: int) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return f"{index:05d}_{safe.strip('_')[:60]}.traj"


def md(
    structures: Sequence[Any],
    model: str | Potential = "auto",
    task: str | Sequence[str | None] | None = None,
    ensemble: str | Sequence[str] = "nvt",
    temperature: float | Sequence[float] = 300.0,
    timestep: float | Sequence[float] = 1.0,
    steps: int | Sequence[int] = 1000,
    interval: int = 10,
    pressure: float = 0.0,
    friction: float = 0.01,
    taup: float = 500.0,
    compressibility: float = 0.01,
    barostat: str = "crescale",
    seed: int | Sequence[int] = 0,
    fixed: Sequence[Sequence[int] | None] | None = None,
    trajectory: str | Path | Sequence[str | Path | None] | None = None,
    device: str = "auto",
    dtype: str = "float32",
    backend: str | None = None,
    batch_size: int | str = "auto",
    min_distance: float = MIN_DISTANCE,
    max_energy_drift: float = 0.5,
    on_result: Callable[[int, MDResult], None] | None = None,
) -> list[MDResult]:
    """Run molecular dynamics of many independent systems, batched on one model.

    Parameters
    ----------
    structures : sequence of ase.Atoms or pymatgen structures
        Inputs (not modified); momenta they carry are the initial ones.
    model, task, device, dtype, batch_size, backend
        As for :func:`~sevenomni_core.batch.relax`.
    ensemble : {"nve", "nvt", "npt"} or one per structure
        Velocity Verlet, Langevin, or Langevin plus a barostat.
    temperature : float or one per structure
        K (>= 0): the thermostat's target, and the Maxwell–Boltzmann
        temperature of the initial momenta.
    timestep : float or one per structure
        fs (> 0).
    steps : int or one per structure
        Steps to run (>= 0).
    interval : int
        Sample (and write a trajectory frame) every this many steps; the
        first and last states are always sampled.
    pressure : float
        NPT target pressure, GPa.
    friction : float
        Langevin friction, 1/fs (ASE's ``friction`` times ``fs``).
    taup : float
        Barostat relaxation time, fs.
    compressibility : float
        The barostat's guess of the material's compressibility, 1/GPa (the
        true relaxation time is ``taup`` times the ratio of the two).
    barostat : {"crescale", "isotropic", "full"}
        Stochastic cell rescaling (isotropic, the right volume
        fluctuations), or Berendsen scaling uniform or by the full
        pressure tensor.
    seed : int or one per structure
        Random streams: structure ``i`` draws from
        ``numpy.random.default_rng(seed[i])``, or
        ``default_rng([seed, i])`` for one integer.  With a list, a system
        gives the same trajectory alone or in any batch.
    fixed : one index list (or None) per structure, optional
        Atoms held fixed, besides ``FixAtoms`` constraints.
    trajectory : folder, or one file path (or None) per structure, optional
        ASE trajectory files, with frames every ``interval`` steps carrying
        energy, forces, stress and momenta; in a folder, one file per
        structure named by its index and label.
    min_distance : float
        Floor on interatomic distances, Å, as in ``relax``.
    max_energy_drift : float
        NVE only: most change of total energy, eV/atom, before the run is
        stopped as blown up.
    on_result : callable, optional
        ``on_result(index, result)`` once per input as soon as it is done.

    Returns
    -------
    list of MDResult
        One per input, in order.  Invalid inputs and blown-up runs have an
        ``error``; the others are unaffected.

    Examples
    --------
    >>> from ase.build import bulk
    >>> out = md([bulk("Cu", cubic=True) * 2], model="7net-0", ensemble="nvt",
    ...          temperature=300, steps=200)  # doctest: +SKIP
    >>> out[0].temperature.mean()  # doctest: +SKIP
    """
    pot = as_potential(model, device, dtype, backend)
    if barostat not in BAROSTATS:
        raise ValueError(f"barostat must be one of {list(BAROSTATS)}, got {barostat!r}")
    if int(interval) < 1:
        raise ValueError(f"interval must be >= 1, got {interval}")
    for name, value in (
        ("friction", friction),
        ("taup", taup),
        ("compressibility", compressibility),
        ("max_energy_drift", max_energy_drift),
    ):
        _check(name, "md", value, 0.0)
    n = len(structures)
    tasks = per_structure(task, n, "task")
    ensembles = per_structure(ensemble, n, "ensemble")
    temps = per_structure(temperature, n, "temperature")
    dts = per_structure(timestep, n, "timestep")
    lengths = per_structure(steps, n, "steps")
    fixes = per_structure(fixed, n, "fixed") if fixed is not None else [None] * n
    if isinstance(seed, (list, tuple)):
        seeds = per_structure(seed, n, "seed")
    else:
        seeds = [[int(seed), i] for i in range(n)]
    names = labels(structures)
    if isinstance(trajectory, (list, tuple)):
        paths = per_structure(trajectory, n, "trajectory")
    elif trajectory is not None:
        paths = [Path(trajectory) / _file_name(names[i], i) for i in range(n)]
    else:
        paths = [None] * n
    results: list[MDResult | None] = [None] * n

    def done(i: int, result: MDResult) -> None:
        results[i] = result
        if on_result is not None:
            on_result(i, result)

    pending: deque[_Run] = deque()
    for i in range(n):
        try:
            if ensembles[i] not in ENSEMBLES:
                raise ValueError(
                    f"{names[i]}: unknown ensemble {ensembles[i]!r}; "
                    f"choose from {list(ENSEMBLES)}"
                )
            _check("temperature (K)", names[i], float(temps[i]), 0.0, strict=False)
            _check("timestep (fs)", names[i], float(dts[i]), 0.0)
            if int(lengths[i]) < 0:
                raise ValueError(f"{names[i]}: steps must be >= 0, got {lengths[i]}")
            atoms, graph = prepare(pot, structures[i], tasks[i], names[i])
            if ensembles[i] == "npt" and not atoms.pbc.all():
                raise ValueError(
                    f"{names[i]}: NPT needs a fully periodic structure "
                    f"(pbc={atoms.pbc.tolist()})"
                )
            mask = fixed_mask(atoms, fixes[i], names[i])
        except (ValueError, TypeError) as err:
            done(i, MDResult(error=str(err)))
            continue
        atoms.constraints = []
        run = _Run(
            index=i,
            atoms=atoms,
            graph=graph,
            task_index=pot.resolve_task(tasks[i])[1],
            ensemble=ensembles[i],
            temperature=float(temps[i]),
            dt=float(dts[i]) * units.fs,
            n_steps=int(lengths[i]),
            friction=friction / units.fs,
            rng=np.random.default_rng(seeds[i]),
            fixed=mask,
        )
        _initial_momenta(run)
        if paths[i] is not None:
            Path(paths[i]).parent.mkdir(parents=True, exist_ok=True)
            run.path = str(paths[i])
            run.writer = Trajectory(run.path, "w")
        why = too_close(run.graph, min_distance)
        if why is not None:
            done(i, _result(run, None, f"atoms too close at the start: {why}"))
        else:
            pending.append(run)
    capacity = structures_per_batch(pot, [r.graph for r in pending], batch_size)
    p_target = pressure * units.GPa
    beta = compressibility / units.GPa
    taup_ase = taup * units.fs
    active: list[_Run] = []
    while pending or active:
        while pending and len(active) < capacity:
            active.append(pending.popleft())
        stress = any(r.ensemble == "npt" or r.periodic for r in active)
        preds = evaluate_graphs(pot, [r.graph for r in active], stress=stress)
        still = []
        for run, pred in zip(active, preds, strict=True):
            if run.steps > 0 and pred.ok:
                _second_half(run, pred.forces)
            error = _blown_up(run, pred, max_energy_drift)
            last = run.steps >= run.n_steps
            if error is None and (last or run.steps % interval == 0):
                _sample(run, pred)
            if error is not None or last:
                done(run.index, _result(run, pred, error))
                continue
            if run.ensemble == "npt" and barostat == "crescale":
                _crescale(run, pred.stress, p_target, taup_ase, beta)
            elif run.ensemble == "npt":
                _berendsen(
                    run, pred.stress, p_target, taup_ase, beta, barostat == "full"
                )
            _first_half(run, pred.forces)
            run.steps += 1
            run.graph = atoms_to_graph(
                run.atoms, pot.cutoff, pot.network.z_to_index, run.task_index
            )
            why = too_close(run.graph, min_distance)
            if why is not None:
                done(
                    run.index, _result(run, None, f"blew up at step {run.steps}: {why}")
                )
                continue
            still.append(run)
        active = still
    return results  # type: ignore[return-value]
