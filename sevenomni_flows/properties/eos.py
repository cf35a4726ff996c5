"""Equation of state: energies of scaled cells, positions relaxed, fitted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase.units import GPa
from pydantic import Field
from pymatgen.io.ase import AseAtomsAdaptor

from ..jobs.calculation import PropertyMaker, model_title
from ..jobs.plots import start_plot
from ..jobs.settings import RelaxSettings, accepts_old_names
from ..schemas import ResultDocument, quantity
from .relax import inner_failure, relax_groups

__all__ = ["EosMaker", "fit_eos", "scaled_structures"]


def scaled_structures(structure, linear_strains):
    """Copies of ``structure`` with lattice vectors scaled by ``1 + strain``."""
    out = []
    for eps in linear_strains:
        s = structure.copy()
        s.scale_lattice(structure.volume * (1.0 + eps) ** 3)
        out.append(s)
    return out


def fit_eos(volumes, energies, eos: str):
    """Fit E(V) (Å³/atom, eV/atom); returns the pymatgen fit and its parameters.

    ``eos`` is pymatgen's name of the form (``EosMaker.eos`` holds the
    default).  The parameters are v0 (Å³/atom), e0 (eV/atom), b0 (GPa) and b1.
    """
    from pymatgen.analysis.eos import EOS

    fit = EOS(eos).fit(np.asarray(volumes), np.asarray(energies))
    params = {
        "v0": float(fit.v0),
        "e0": float(fit.e0),
        "b0": float(fit.b0 / GPa),
        "b1": float(fit.b1),
    }
    return fit, params


class EosDocument(ResultDocument):
    """An equation-of-state fit E(V)."""

    property: str = "eos"
    columns: ClassVar[tuple[str, ...]] = ("v0", "b0", "e0")
    eos: str | None = Field(None, description="EOS fitted (pymatgen name)")
    volumes: list[float] = quantity("Volumes", "Å³/atom", default_factory=list)
    energies: list[float] = quantity("Energies", "eV/atom", default_factory=list)
    v0: float | None = quantity("Equilibrium volume", "Å³/atom")
    b0: float | None = quantity("Bulk modulus", "GPa")
    b1: float | None = quantity("Pressure derivative of B", "unitless")
    e0: float | None = quantity("Minimum energy", "eV/atom")
    max_steps_reached: int = Field(
        0, description="Scaled cells whose relaxation did not converge"
    )


@accepts_old_names
@dataclass
class EosMaker(PropertyMaker):
    """E(V) of a structure: scaled cells relaxed at fixed volume, then fitted.

    The scaled cells of every material of the job are relaxed in one batch.
    If any does not converge within ``relax.max_steps``, the property fails (see
    :func:`~sevenomni_flows.properties.relax.inner_failure`).

    Parameters
    ----------
    linear_strains : list of float
        Strains of the lattice vectors (atomate2's default: -5% to 5%, 6
        cells); at least 4 distinct values, each above -1.
    eos : str
        pymatgen EOS name.
    relax : RelaxSettings
        The fixed-volume relaxations of the scaled cells (fmax in eV/Å).
    plot_dir : str, optional
        Folder for the PNG of the fit.
    """

    name: str = "eos"
    linear_strains: list[float] = field(
        default_factory=lambda: np.linspace(-0.05, 0.05, 6).round(6).tolist()
    )
    eos: str = "birch_murnaghan"
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.01, max_steps=300)
    )
    plot_dir: str | None = None

    property: ClassVar[str] = "eos"
    document: ClassVar[type] = EosDocument
    stage: ClassVar[str] = "material"
    bulk_only: ClassVar[bool] = True
    mixes_tasks: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        from pymatgen.analysis.eos import EOS as EOS_

        strains, key = list(self.linear_strains), self.spec_key("linear_strains")
        if len({round(e, 10) for e in strains}) < 4:
            raise ValueError(f"{key} needs at least 4 distinct strains, got {strains}")
        if any(e <= -0.5 or e >= 0.5 for e in strains):
            raise ValueError(f"{key} must lie in (-0.5, 0.5): {strains}")
        if self.eos not in EOS_.MODELS:
            raise ValueError(
                f"{self.spec_key('eos')}: unknown equation of state {self.eos!r}; "
                f"choose from {sorted(EOS_.MODELS)}"
            )

    def compute(self, items, targets, ctx):
        """Scale every item, relax all cells in one batch, fit each E(V)."""
        scaled = [scaled_structures(it.structure, self.linear_strains) for it in items]
        groups = [[AseAtomsAdaptor.get_atoms(s) for s in group] for group in scaled]
        tasks = [it.task for it in items]
        relaxed = relax_groups(groups, ctx, self.relax, tasks)
        out = []
        for it, (target,), cells, results in zip(
            items, targets, scaled, relaxed, strict=True
        ):
            try:
                out.append([self._fit(it, target, ctx, cells, results)])
            except Exception as err:  # one material's fit fails alone
                out.append(err)
        return out

    def _fit(self, item, target, ctx, cells, results) -> EosDocument:
        why = inner_failure(results, self.relax, "scaled cells")
        if why:
            n_stuck = sum(1 for r in results if r.error is None and not r.converged)
            return self.failed(
                target,
                ctx,
                why,
                eos=self.eos,
                error_type="InnerRelaxationError",
                max_steps_reached=n_stuck,
            )
        n = len(item.structure)
        volumes = [s.volume / n for s in cells]
        energies = [r.energy / n for r in results]
        common = {"eos": self.eos, "volumes": volumes, "energies": energies}
        try:
            fit, params = fit_eos(volumes, energies, self.eos)
        except Exception as err:  # pymatgen raises several kinds on bad fits
            return self.failed(
                target,
                ctx,
                f"EOS fit failed: {err}",
                error_type=type(err).__name__,
                **common,
            )
        plots = [self._plot(fit, target, ctx)] if self.plot_dir else []
        return self.doc(
            target,
            ctx,
            state="completed",
            input_structure=item.structure,
            plots=plots,
            **common,
            **params,
        )

    def _plot(self, fit, target, ctx) -> str:
        plt, path = start_plot(self.plot_dir, f"{target.formula}_{target.key}_eos.png")
        fig, ax = plt.subplots(figsize=(5, 4))
        # pymatgen's own text says eV and Ang^3 for these per-atom numbers
        text = (
            f"E0 = {fit.e0:.3f} eV/atom\nV0 = {fit.v0:.2f} Å³/atom\n"
            f"B0 = {fit.b0 / GPa:.1f} GPa\nB0' = {fit.b1:.2f}"
        )
        fit.plot(ax=ax, text=text)
        ax.set_title(f"{target.label}: equation of state, {model_title(ctx, target)}")
        ax.set_xlabel("volume (Å³/atom)", fontsize=11)
        ax.set_ylabel("energy (eV/atom)", fontsize=11)
        ax.tick_params(labelsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return str(path)
