"""The ASE calculator."""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from . import _keys as K
from .data import atoms_to_graph, validate_atoms
from .dispersion import D3Config, d3_graphs, with_dispersion
from .model.potential import Potential, as_potential

__all__ = ["SevenOmniCalculator"]


class SevenOmniCalculator(Calculator):
    """ASE calculator for SevenNet-family models.

    Gives ``energy`` and ``free_energy`` (eV, equal), per-atom ``energies``
    (eV), ``forces`` (eV/Å) and, for structures with a periodic cell of
    non-zero volume, ``stress`` (eV/Å³, ASE sign and Voigt order
    ``xx, yy, zz, yz, xz, xy``).  With dispersion, the per-atom energies are
    computed only when asked for (``get_potential_energies``), as they cost
    D3 a second pass.

    Parameters
    ----------
    model : str, path-like or Potential
        ``"auto"``, a registry name, a checkpoint path, or a loaded model.
    task : str, optional
        Task (DFT protocol) of a multi-task model, case-insensitive; the
        model's default when omitted.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:n]"``.
    dtype : str
        ``"float32"`` or ``"float64"``.
    dispersion : str, D3Config or None
        Add DFT-D3 to energy, forces and stress: ``"d3bj"``, ``"d3zero"``, or
        a :class:`~sevenomni_core.dispersion.D3Config` (functional, cutoffs,
        three-body term).  Its damping parameters follow the task's
        functional.  None (default) keeps the model's own setting: none for a
        loaded model.  Recorded in ``calc.parameters["dispersion"]``.
    backend : str, optional
        Kernels of the forward pass: ``"e3nn"``, ``"cueq"`` (NVIDIA
        cuEquivariance, optional dependency) or ``"auto"`` (cueq on CUDA where
        its kernels are installed).  None keeps a given Potential's (e3nn for
        a name).  Recorded in ``calc.parameters["backend"]``.

    Raises
    ------
    ValueError
        For an unknown damping, or a task whose data already contain
        dispersion (``odac23``, ``spice``, ``omol25_*``) unless
        ``D3Config(..., force=True)``.

    Examples
    --------
    >>> from ase.build import bulk
    >>> atoms = bulk("Cu", "fcc", a=3.61)
    >>> atoms.calc = SevenOmniCalculator("7net-0", device="cpu")  # doctest: +SKIP
    >>> atoms.get_potential_energy()  # doctest: +SKIP
    -4.09...
    """

    implemented_properties: ClassVar[list[str]] = [
        "energy",
        "free_energy",
        "energies",
        "forces",
        "stress",
    ]

    def __init__(
        self,
        model: str | os.PathLike | Potential = "auto",
        task: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        dispersion: str | D3Config | None = None,
        backend: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.potential = as_potential(model, device, dtype, backend)
        if dispersion is not None:
            self.potential = with_dispersion(self.potential, dispersion)
        self.task, self.task_index = self.potential.resolve_task(task)
        self.parameters.update(self.potential.describe(self.task))

    @property
    def model_name(self) -> str:
        """The model in use (after ``"auto"`` is resolved)."""
        return self.potential.name

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Evaluate ``atoms``; invalid structures raise before any compute."""
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        pot = self.potential
        validate_atoms(
            atoms,
            pot.network.species,
            model_name=pot.name,
            label=atoms.get_chemical_formula() or "empty structure",
        )
        graph = atoms_to_graph(
            atoms, pot.cutoff, pot.network.z_to_index, self.task_index
        )
        graph = {k: v.to(pot.device) for k, v in graph.items()}
        periodic = bool(atoms.pbc.any()) and graph[K.VOLUME].item() > 0
        out = pot.evaluate(graph, compute_forces=True, compute_stress=periodic)
        energy = float(out[K.ENERGY].detach().item())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out[K.ATOMIC_ENERGIES].detach().cpu().double().numpy(),
            "forces": out[K.FORCES].detach().cpu().double().numpy(),
        }
        if periodic:
            self.results["stress"] = np.asarray(
                out[K.STRESS][0].detach().cpu().double().numpy()
            )
        if pot.dispersion is not None:
            # D3's per-atom energies cost simple-dftd3 a second pass: only
            # when asked for (a later get_potential_energies() asks)
            atomic = "energies" in (properties or ())
            d3 = d3_graphs(pot, [graph], stress=periodic, energies=atomic)
            self.results["energy"] = self.results["free_energy"] = energy + float(
                d3.energy[0]
            )
            if d3.energies is None:
                del self.results["energies"]
            else:
                self.results["energies"] = self.results["energies"] + d3.energies
            self.results["forces"] = self.results["forces"] + d3.forces
            if periodic:
                self.results["stress"] = self.results["stress"] + d3.stress[0]

    def __repr__(self) -> str:
        task = f", task={self.task!r}" if self.task else ""
        d3 = self.potential.dispersion
        disp = f", dispersion={d3.damping!r}" if d3 is not None else ""
        return (
            f"SevenOmniCalculator(model={self.model_name!r}{task}, "
            f"device={self.potential.device}, dtype={self.potential.dtype}{disp})"
        )
