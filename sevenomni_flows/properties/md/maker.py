"""Molecular dynamics of many materials at once: stability at temperature.

Every material and temperature of a job is one system of a single batched
:func:`~sevenomni_core.batch.md` call.  The document holds summary
statistics and short sampled series; the frames go to an ASE trajectory
file per run (``trajectory_dir``), never into the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms
from pydantic import Field
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core.options import BAROSTATS, ENSEMBLES, default

from ...jobs.base import Target, maker_settings, protocol
from ...jobs.calculation import PropertyMaker, model_title
from ...jobs.plots import start_plot
from ...schemas import ResultDocument, quantity
from . import dynamics

#: Settings only NPT uses.
NPT_ONLY = ("pressure", "taup", "compressibility", "barostat")

__all__ = ["MDMaker", "supercell_for"]


def supercell_for(atoms: Atoms, min_length: float) -> Atoms:
    """``atoms`` repeated until every perpendicular width is >= ``min_length`` Å."""
    if min_length <= 0:
        return atoms
    cell = atoms.cell.array
    volume = abs(np.linalg.det(cell))
    reps = []
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        width = volume / np.linalg.norm(np.cross(cell[j], cell[k]))
        reps.append(max(1, int(np.ceil(min_length / width - 1e-9))))
    return atoms.repeat(reps)


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
    pressure: float | None = quantity("NPT target pressure", "GPa")
    timestep: float = quantity("Time step", "fs", default=...)
    steps: int = Field(0, description="Steps run (fewer than asked if it stopped)")
    n_atoms: int | None = Field(None, description="Atoms simulated (supercell)")
    duration: float | None = quantity("Simulated time", "ps")
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
    rdf_similarity: float | None = quantity(
        "Correlation of the RDF of the last quarter with that of the input structure "
        "(0.25 Å smearing; 1: same order)",
        "unitless",
    )
    still_crystalline: bool | None = Field(
        None, description="rdf_similarity >= 0.8: the structure kept its order"
    )
    diffusion_coefficient: float | None = quantity(
        "From the MSD slope of the second half; None while atoms only vibrate "
        "(final MSD below 4 Å²)",
        "cm²/s",
    )
    energy_drift: float | None = quantity(
        "NVE: slope of the total energy", "eV/atom/ps"
    )
    time: list[float] = quantity("Sample times", "fs", default_factory=list)
    temperatures: list[float] = quantity(
        "Temperature, sampled", "K", default_factory=list
    )
    potential_energies: list[float] = quantity(
        "Potential energy, sampled", "eV/atom", default_factory=list
    )
    volumes: list[float] = quantity("Volume, sampled", "Å³/atom", default_factory=list)
    trajectory: str | None = Field(
        None, description="ASE trajectory file of the sampled frames (not stored here)"
    )


@dataclass
class MDMaker(PropertyMaker):
    """MD of each material at each temperature: does it keep its structure?

    One document per material and temperature (``property: "md"``), with
    the mean temperature and pressure, the volume change, the largest
    displacement, an RDF-based ``still_crystalline`` flag and, where atoms
    leave their sites, a diffusion coefficient from the MSD.

    Parameters
    ----------
    ensemble : {"nve", "nvt", "npt"}
        Velocity Verlet, Langevin, or Langevin + a barostat.
    temperatures : list of float
        K (>= 0); one run per temperature.
    pressure : float
        NPT target, GPa.
    timestep : float
        fs.
    steps : int
        Steps per run.
    interval : int
        Steps between samples (and trajectory frames).
    friction : float
        Langevin friction, 1/fs.
    taup, compressibility, barostat
        NPT only: relaxation time (fs), assumed compressibility (1/GPa), and
        ``"crescale"`` (stochastic cell rescaling: the right volume
        fluctuations), ``"isotropic"`` or ``"full"`` (Berendsen); see
        :func:`~sevenomni_core.batch.md`.  Settings an ensemble does not use
        (these outside NPT, ``friction`` in NVE) stay out of the reuse key.
    min_length : float
        Repeat each cell until every perpendicular width is at least this,
        Å (0: as given).  The default, 10 Å, keeps 1- and 2-atom primitive
        cells from giving temperatures and RDFs with no statistics.
    seed : int
        Random streams (Maxwell–Boltzmann start and Langevin noise).
    trajectory_dir : str, optional
        Folder of the ASE trajectory files (not a setting: left out of the
        reuse key); none are written without it.
    plot_dir : str, optional
        Folder for the temperature and energy traces.
    """

    name: str = "md"
    ensemble: str = default("md", "ensemble")
    temperatures: list[float] = field(default_factory=lambda: [300.0])
    pressure: float = default("md", "pressure")
    timestep: float = default("md", "timestep")
    steps: int = default("md", "steps")
    interval: int = default("md", "interval")
    friction: float = default("md", "friction")
    taup: float = default("md", "taup")
    compressibility: float = default("md", "compressibility")
    barostat: str = default("md", "barostat")
    min_length: float = 10.0
    seed: int = default("md", "seed")
    trajectory_dir: str | None = None
    plot_dir: str | None = None

    property: ClassVar[str] = "md"
    document: ClassVar[type] = MDDocument
    stage: ClassVar[str] = "material"

    def __post_init__(self):
        key = self.spec_key
        if self.ensemble not in ENSEMBLES:
            raise ValueError(
                f"{key('ensemble')}: unknown ensemble {self.ensemble!r}; "
                f"choose from {list(ENSEMBLES)}"
            )
        if not self.temperatures:
            raise ValueError(
                f"{key('temperatures')}: give at least one temperature (K)"
            )
        for t in self.temperatures:
            if not t >= 0:
                raise ValueError(f"{key('temperatures')}: must be >= 0 K, got {t}")
        if not self.timestep > 0:
            raise ValueError(f"{key('timestep')} must be > 0 fs, got {self.timestep}")
        if self.steps < 1 or self.interval < 1:
            raise ValueError(f"{key('steps')} and {key('interval')} must be >= 1")
        if self.barostat not in BAROSTATS:
            raise ValueError(
                f"{key('barostat')} must be one of {list(BAROSTATS)}, "
                f"got {self.barostat!r}"
            )
        for name in ("friction", "taup", "compressibility"):
            if not getattr(self, name) > 0:
                raise ValueError(f"md.{name} must be > 0, got {getattr(self, name)}")

    def targets(self, item, pot, task) -> list[Target]:
        """One document per temperature."""
        settings = maker_settings(self)
        settings.pop("temperatures")
        unused = {"nve": (*NPT_ONLY, "friction"), "nvt": NPT_ONLY, "npt": ()}
        for name in unused[self.ensemble]:
            settings.pop(name)
        return [
            Target(
                item.formula,
                item.structure_id,
                item.label,
                protocol(
                    self.property, pot, task, settings, item.on, {"temperature": t}
                ),
                # which run: also on its failed or skipped document
                {
                    "ensemble": self.ensemble,
                    "temperature": t,
                    "timestep": self.timestep,
                },
            )
            for t in self.temperatures
        ]

    def compute(self, items, targets, ctx):
        """All materials at all temperatures in one batched MD call."""
        from sevenomni_core.batch import md

        systems, owners = [], []
        for k, item in enumerate(items):
            atoms = AseAtomsAdaptor.get_atoms(item.structure)
            atoms = supercell_for(atoms, self.min_length)
            atoms.info["label"] = item.label
            for target, t in zip(targets[k], self.temperatures, strict=True):
                systems.append(atoms)
                owners.append((k, target, t))
        paths = None
        if self.trajectory_dir:  # named by reuse key: a rerun never overwrites
            folder = Path(self.trajectory_dir)
            paths = [
                folder / f"{safe_name(t.label)}_{t.key}.traj" for _, t, _ in owners
            ]
        runs = md(
            systems,
            model=ctx.pot,
            task=ctx.task,
            ensemble=self.ensemble,
            temperature=[t for _, _, t in owners],
            timestep=self.timestep,
            steps=self.steps,
            interval=self.interval,
            pressure=self.pressure,
            friction=self.friction,
            taup=self.taup,
            compressibility=self.compressibility,
            barostat=self.barostat,
            seed=[[self.seed, i] for i in range(len(systems))],
            trajectory=paths,
        )
        out: list[list] = [[] for _ in items]
        for (k, target, t), atoms, run in zip(owners, systems, runs, strict=True):
            try:
                out[k].append(self._document(items[k], target, ctx, atoms, t, run))
            except Exception as err:  # one run's analysis fails alone
                out[k].append(self.failed(target, ctx, err))
        return out

    def _document(self, item, target, ctx, atoms, temperature, run) -> MDDocument:
        n = len(atoms)
        common = {
            "pressure": self.pressure if self.ensemble == "npt" else None,
            "steps": run.steps,
            "n_atoms": n,
            "trajectory": run.trajectory,
            "input_structure": item.structure,
        }
        if not run.ok:
            return self.failed(
                target,
                ctx,
                run.error,
                error_type="MDError",
                **common,
            )
        half = len(run.time) // 2
        stats = {
            "duration": float(run.time[-1]) / 1000.0,
            "mean_temperature": float(run.temperature[half:].mean()),
            "time": run.time.tolist(),
            "temperatures": run.temperature.tolist(),
            "potential_energies": (run.potential_energy / n).tolist(),
            "max_displacement": dynamics.max_displacement(run.positions),
        }
        if run.volume is not None:
            stats["mean_pressure"] = float(run.pressure[half:].mean())
            stats["volumes"] = (run.volume / n).tolist()
            stats["volume_change"] = float(
                (run.volume[half:].mean() / run.volume[0] - 1) * 100
            )
        if self.ensemble == "nve":
            total = (run.potential_energy + run.kinetic_energy) / n
            stats["energy_drift"] = float(np.polyfit(run.time / 1000, total, 1)[0])
        free = np.ones(n, dtype=bool)
        msd = dynamics.mean_square_displacement(run.positions, free)
        stats["diffusion_coefficient"] = dynamics.diffusion_coefficient(run.time, msd)
        frames = _frames(atoms, run)
        if len(frames) >= 4:
            late = frames[-max(1, len(frames) // 4) :]
            similarity = dynamics.rdf_similarity(frames[:1], late)
            stats["rdf_similarity"] = similarity
            stats["still_crystalline"] = similarity >= dynamics.CRYSTALLINE_SIMILARITY
        plots = [self._plot(target, ctx, run, temperature)] if self.plot_dir else []
        return self.doc(target, ctx, state="completed", plots=plots, **common, **stats)

    def _plot(self, target, ctx, run, temperature) -> str:
        plt, path = start_plot(
            self.plot_dir, f"{target.formula}_{target.key}_md_{temperature:g}K.png"
        )
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
        top.plot(run.time / 1000, run.temperature, lw=1)
        top.axhline(temperature, color="k", ls="--", lw=0.8)
        top.set_ylabel("temperature (K)")
        top.set_title(
            f"{target.label}: {self.ensemble.upper()} at {temperature:g} K, "
            f"{model_title(ctx, target)}",
            fontsize=10,
        )
        n = run.positions.shape[1]
        bottom.plot(run.time / 1000, run.potential_energy / n, lw=1, label="potential")
        bottom.plot(
            run.time / 1000,
            (run.potential_energy + run.kinetic_energy) / n,
            lw=1,
            label="total",
        )
        bottom.set_xlabel("time (ps)")
        bottom.set_ylabel("energy (eV/atom)")
        bottom.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return str(path)


def safe_name(text: str) -> str:
    """``text`` as a file-name part: letters, digits, ``-_.``; 60 at most."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]


def _frames(atoms: Atoms, run) -> list[Atoms]:
    """The sampled frames as atoms."""
    out = []
    for positions, cell in zip(run.positions, run.cells, strict=True):
        frame = atoms.copy()
        frame.set_cell(cell, scale_atoms=False)
        frame.positions = positions
        out.append(frame)
    return out
