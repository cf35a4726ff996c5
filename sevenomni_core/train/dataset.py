"""Labelled structures for training: reading, checking and graphs.

Frames come from any file ASE reads with a calculator attached (extxyz,
ASE databases, ...): the energy (eV), forces (eV/Å) and, where present, the
stress (eV/Å³, ASE sign and Voigt order).  Every problem is reported with
the file and the frame index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from .. import _keys as K
from ..data.graph import AtomGraph, atoms_to_graph, collate

__all__ = ["DatasetError", "Frame", "Sample", "make_samples", "read_frames"]


class DatasetError(ValueError):
    """A training frame that cannot be used; the message names file and frame."""


@dataclass
class Frame:
    """One labelled structure.

    Attributes
    ----------
    atoms : ase.Atoms
    energy : float
        Total energy in eV.
    forces : numpy.ndarray
        ``(N, 3)`` eV/Å.
    stress : numpy.ndarray or None
        ``(6,)`` eV/Å³ (ASE order and sign); None when the file has none.
    task : str
        The task (DFT protocol) that labelled it.
    source : str
        ``file[frame]``, for messages.
    """

    atoms: Atoms
    energy: float
    forces: np.ndarray
    stress: np.ndarray | None
    task: str
    source: str


@dataclass
class Sample:
    """A frame as tensors: its graph (batch of one) and labels."""

    graph: AtomGraph
    energy: torch.Tensor  # (1,) eV
    forces: torch.Tensor  # (N, 3) eV/Å
    stress: torch.Tensor  # (1, 6) eV/Å³, zeros when absent
    has_stress: torch.Tensor  # (1,) bool
    source: str


def _label(atoms: Atoms, name: str, source: str):
    calc = atoms.calc
    results = getattr(calc, "results", {}) if calc is not None else {}
    value = results.get(name)
    if value is None and name == "energy":
        value = results.get("free_energy")
    if value is None:
        value = atoms.info.get(name) if name != "forces" else atoms.arrays.get(name)
    return None if value is None else np.asarray(value, dtype=np.float64)


def read_frames(path: str | Path, task: str) -> list[Frame]:
    """Read every frame of ``path`` and check its labels.

    Raises
    ------
    DatasetError
        When the file is missing or unreadable, or a frame lacks energy or
        forces, has labels of the wrong shape, or has NaN/inf labels.
    """
    from ase.io import read

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset file {path} does not exist (task {task})")
    try:
        images = read(path, index=":")
    except Exception as err:  # ase raises many kinds for unreadable files
        raise DatasetError(f"{path}: cannot read structures: {err}") from err
    if not images:
        raise DatasetError(f"{path}: has no structures")
    frames = []
    for k, atoms in enumerate(images):
        source = f"{path}[frame {k}]"
        energy = _label(atoms, "energy", source)
        forces = _label(atoms, "forces", source)
        stress = _label(atoms, "stress", source)
        if energy is None:
            raise DatasetError(f"{source}: no energy label")
        if forces is None:
            raise DatasetError(f"{source}: no forces label")
        if forces.shape != (len(atoms), 3):
            raise DatasetError(
                f"{source}: forces have shape {forces.shape}, expected "
                f"({len(atoms)}, 3)"
            )
        if stress is not None:
            if stress.shape == (3, 3):
                stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            if stress.shape != (6,):
                raise DatasetError(f"{source}: stress has shape {stress.shape}")
        for name, value in (("energy", energy), ("forces", forces), ("stress", stress)):
            if value is not None and not np.all(np.isfinite(value)):
                raise DatasetError(f"{source}: {name} label is NaN or infinite")
        frames.append(Frame(atoms, float(energy), forces, stress, task, source))
    return frames


def check_species(frames: Sequence[Frame], species: Sequence[int], model: str) -> None:
    """Raise :class:`DatasetError` for the first frame with an unknown element."""
    known = set(species)
    for f in frames:
        bad = sorted(set(f.atoms.numbers.tolist()) - known)
        if bad:
            names = ", ".join(chemical_symbols[z] for z in bad)
            raise DatasetError(
                f"{f.source}: element(s) {names} are not covered by {model}"
            )


def make_samples(
    frames: Sequence[Frame],
    cutoff: float,
    z_to_index: np.ndarray,
    task_map: dict[str, int],
) -> list[Sample]:
    """Graphs and label tensors of ``frames`` (task indices from ``task_map``)."""
    samples = []
    for f in frames:
        task = task_map.get(f.task, 0)
        graph = atoms_to_graph(f.atoms, cutoff, z_to_index, task)
        stress = np.zeros(6) if f.stress is None else f.stress
        samples.append(
            Sample(
                graph=graph,
                energy=torch.tensor([f.energy], dtype=torch.float64),
                forces=torch.from_numpy(np.ascontiguousarray(f.forces)),
                stress=torch.from_numpy(np.asarray(stress, dtype=np.float64))[None],
                has_stress=torch.tensor([f.stress is not None]),
                source=f.source,
            )
        )
    return samples


def collate_samples(samples: Sequence[Sample]) -> tuple[AtomGraph, dict]:
    """One batched graph plus the stacked labels."""
    graph = collate([s.graph for s in samples])
    labels = {
        K.ENERGY: torch.cat([s.energy for s in samples]),
        K.FORCES: torch.cat([s.forces for s in samples]),
        K.STRESS: torch.cat([s.stress for s in samples]),
        "has_stress": torch.cat([s.has_stress for s in samples]),
    }
    return graph, labels
