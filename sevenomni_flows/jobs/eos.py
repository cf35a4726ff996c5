"""Equation of state: energies of scaled cells, positions relaxed, fitted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.units import GPa
from jobflow import Maker, job
from pymatgen.analysis.eos import EOS
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core.batch import relax

from ..schemas import EosDocument
from .base import ModelSettings, failed_input, identity, resolve_input

__all__ = ["EosMaker", "fit_eos", "scaled_structures"]


def scaled_structures(structure, linear_strains):
    """Copies of ``structure`` with lattice vectors scaled by ``1 + strain``."""
    out = []
    for eps in linear_strains:
        s = structure.copy()
        s.scale_lattice(structure.volume * (1.0 + eps) ** 3)
        out.append(s)
    return out


def fit_eos(volumes, energies, eos: str = "birch_murnaghan"):
    """Fit E(V) (Å³/atom, eV/atom); returns the pymatgen fit and its parameters.

    The parameters are v0 (Å³/atom), e0 (eV/atom), b0 (GPa) and b1.
    """
    fit = EOS(eos).fit(np.asarray(volumes), np.asarray(energies))
    params = {
        "v0": float(fit.v0),
        "e0": float(fit.e0),
        "b0": float(fit.b0 / GPa),
        "b1": float(fit.b1),
    }
    return fit, params


@dataclass
class EosMaker(Maker):
    """E(V) of a structure: scaled cells relaxed at fixed volume in one batch.

    Parameters
    ----------
    linear_strains : list of float
        Strains of the lattice vectors (atomate2's default: -5% to 5%, 6 cells);
        use a relaxed structure as input.
    eos : str
        pymatgen EOS name.
    fmax : float
        Force threshold of the fixed-volume relaxations, eV/Å.
    plot_dir : str, optional
        Folder for the PNG of the fit.
    """

    name: str = "eos"
    settings: ModelSettings = field(default_factory=ModelSettings)
    linear_strains: list[float] = field(
        default_factory=lambda: np.linspace(-0.05, 0.05, 6).round(6).tolist()
    )
    eos: str = "birch_murnaghan"
    fmax: float = 0.01
    max_steps: int = 300
    plot_dir: str | None = None

    @job(output_schema=EosDocument)
    def make(self, structure):
        """Return an EosDocument."""
        pot, task = self.settings.potential()
        structure, info = resolve_input(structure)
        if structure is None:
            return failed_input("eos", self, pot, task, info, EosDocument)
        base = identity(structure, info, "eos", self, pot, task)
        scaled = scaled_structures(structure, self.linear_strains)
        results = relax(
            [AseAtomsAdaptor.get_atoms(s) for s in scaled],
            model=pot,
            task=task,
            fmax=self.fmax,
            max_steps=self.max_steps,
        )
        errors = [r.error for r in results if r.error]
        if errors:
            return EosDocument(**base, eos=self.eos, state="failed", error=errors[0])
        n = len(structure)
        volumes = [s.volume / n for s in scaled]
        energies = [r.energy / n for r in results]
        try:
            fit, params = fit_eos(volumes, energies, self.eos)
        except Exception as err:  # pymatgen raises several kinds on bad fits
            return EosDocument(
                **base,
                eos=self.eos,
                state="failed",
                error=f"EOS fit failed: {err}",
                volumes=volumes,
                energies=energies,
            )
        plots = [self._plot(fit, base)] if self.plot_dir else []
        return EosDocument(
            **base,
            eos=self.eos,
            state="completed",
            volumes=volumes,
            energies=energies,
            plots=plots,
            **params,
        )

    def _plot(self, fit, base: dict) -> str:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        folder = Path(self.plot_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{base['formula']}_{base['structure_id']}_eos.png"
        fig, ax = plt.subplots(figsize=(5, 4))
        fit.plot(ax=ax, text=f"{base['formula']} ({self.settings.model})")
        ax.set_xlabel("volume (Å³/atom)")
        ax.set_ylabel("energy (eV/atom)")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return str(path)
