"""What every property job shares: the model settings and input handling."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any

from jobflow import job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core.model.potential import Potential, load_model

from ..schemas import Provenance, structure_id

__all__ = [
    "ModelSettings",
    "as_structure",
    "failed_input",
    "identity",
    "pick",
    "record",
    "resolve_input",
    "settings_key",
]

#: Maker fields that do not change results (left out of the reuse key).
NOT_SETTINGS = {"name", "settings", "plot_dir"}


@dataclass
class ModelSettings:
    """The model a job runs: name or path, task, device and precision.

    The network is loaded once per worker process and shared by every job
    that asks for the same checkpoint, device and dtype.
    """

    model: str = "auto"
    task: str | None = None
    device: str = "auto"
    dtype: str = "float32"

    def potential(self) -> tuple[Potential, str | None]:
        """The loaded model and the resolved task name."""
        pot = load_model(self.model, device=self.device, dtype=self.dtype)
        task, _ = pot.resolve_task(self.task)
        return pot, task


def maker_settings(maker: Any) -> dict:
    """The fields of a Maker that change its results."""
    return {
        f.name: getattr(maker, f.name)
        for f in fields(maker)
        if f.name not in NOT_SETTINGS
    }


def settings_key(prop: str, sha256: str, task: str | None, settings: dict) -> str:
    """Hash identifying a calculation's protocol (for reusing stored results)."""
    text = json.dumps(
        {"property": prop, "sha256": sha256, "task": task, "settings": settings},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def as_structure(structure: Any) -> Structure:
    """A pymatgen Structure from a Structure, ASE Atoms, or a serialised dict."""
    if isinstance(structure, Structure):
        return structure
    if isinstance(structure, dict):
        return Structure.from_dict(structure)
    return AseAtomsAdaptor.get_structure(structure)


def resolve_input(obj: Any) -> tuple[Structure | None, dict]:
    """The structure to compute on, and the material it belongs to.

    ``obj`` is a structure, or a relaxation result (document or dict) whose
    relaxed structure is used and whose input structure names the material.
    Returns ``(structure, info)`` with ``info`` holding ``formula`` and
    ``structure_id``, plus ``error`` (and no structure) when a failed
    relaxation left nothing to compute on.
    """
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump()
    if isinstance(obj, dict) and "property" in obj:
        info = {
            "formula": obj.get("formula", "unknown"),
            "structure_id": obj.get("structure_id", "unknown"),
        }
        if obj.get("state") != "completed" or obj.get("structure") is None:
            info["error"] = (
                f"no input: the {obj.get('property')} step failed: {obj.get('error')}"
            )
            return None, info
        if obj.get("converged") is False:
            info["error"] = (
                f"no input: the {obj.get('property')} step did not converge within "
                f"{obj.get('steps')} steps (fmax {obj.get('fmax')} eV/Å)"
            )
            return None, info
        return as_structure(obj["structure"]), info
    structure = as_structure(obj)
    return structure, {
        "formula": structure.composition.reduced_formula,
        "structure_id": structure_id(structure),
    }


def identity(
    structure: Structure,
    info: dict,
    prop: str,
    maker: Any,
    pot: Potential,
    task: str | None,
) -> dict:
    """The summary fields shared by all documents."""
    settings = maker_settings(maker)
    return {
        "formula": info["formula"],
        "structure_id": info["structure_id"],
        "property": prop,
        "model": Provenance.from_potential(pot, task),
        "input_structure": structure,
        "settings": json.loads(json.dumps(settings, default=str)),
        "settings_key": settings_key(prop, pot.sha256, task, settings),
    }


def failed_input(
    prop: str, maker: Any, pot: Potential, task: str | None, info: dict, cls
):
    """A failed document for a calculation that had no usable input."""
    settings = maker_settings(maker)
    return cls(
        formula=info["formula"],
        structure_id=info["structure_id"],
        property=prop,
        model=Provenance.from_potential(pot, task),
        state="failed",
        error=info["error"],
        settings_key=settings_key(prop, pot.sha256, task, settings),
    )


@job
def pick(documents: list, index: int):
    """One material's result out of a batched job (stored on its own)."""
    return documents[index]


@job
def record(document):
    """Store a document as it is (e.g. the failure of an unreadable input)."""
    return document
