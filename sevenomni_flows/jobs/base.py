"""What every property job shares: model settings, reuse keys, inputs.

A calculation is identified by its **reuse key**, the hash of its whole
protocol: the property, the checkpoint's sha256, the task, the dtype, every
setting of its Maker that changes results, and what it was computed *on*:
the input structure's id for a relaxation, the relaxation's key for a
property of the relaxed structure.  So a property is never reused from
another relaxation, precision or model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from ase import Atoms
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core.constraints import symmetry_precision, unsupported_constraint
from sevenomni_core.options import BACKENDS, DAMPINGS, DTYPES

from ..schemas import structure_id
from ..schemas.provenance import FIX_SYMMETRY
from .settings import flat_settings

if TYPE_CHECKING:
    from sevenomni_core.model.potential import Potential

__all__ = [
    "Item",
    "ModelSettings",
    "Target",
    "as_structure",
    "constrained_atoms",
    "maker_settings",
    "protocol",
    "resolve_input",
    "reuse_key",
]

#: Maker fields that do not change results (left out of the reuse key).
NOT_SETTINGS = {"name", "settings", "plot_dir", "trajectory_dir", "spec_dir"}


@dataclass
class ModelSettings:
    """The model a job runs: name or path, task, device, precision, dispersion,
    kernels.

    The network is loaded once per worker process and shared by every job
    that asks for the same checkpoint, device and dtype.  ``dispersion``
    (``"d3bj"`` or ``"d3zero"``) adds DFT-D3 with the task's functional; a
    task whose data already hold dispersion refuses it.  ``backend``
    (``"e3nn"``, ``"cueq"`` or ``"auto"``) picks the kernels; it is recorded
    in provenance but not in reuse keys, since results agree.
    """

    model: str = field(
        default="auto",
        metadata={"description": "Registry name or checkpoint path ('auto': best)"},
    )
    task: str | None = field(
        default=None, metadata={"description": "Task (fidelity); None: the default"}
    )
    device: str = field(
        default="auto", metadata={"description": "auto, cpu, cuda or cuda:N"}
    )
    dtype: Literal[DTYPES] = field(
        default="float32", metadata={"description": "Precision"}
    )
    dispersion: Literal[tuple(DAMPINGS)] | None = field(
        default=None,
        metadata={"description": "Add DFT-D3 with the task's functional (None: none)"},
    )
    backend: Literal[(*BACKENDS, "auto")] = field(
        default="e3nn",
        metadata={
            "description": "Kernels: e3nn, cueq (cuEquivariance) or auto (cueq on "
            "CUDA where its kernels are installed); results agree"
        },
    )

    def potential(self, build: bool = True) -> tuple[Potential, str | None]:
        """The loaded model and the resolved task name; with ``build`` False
        the network is built on first use (naming the model, its tasks and
        reuse keys needs only the checkpoint's config and hash)."""
        from sevenomni_core.model.potential import load_model

        pot = load_model(
            self.model,
            device=self.device,
            dtype=self.dtype,
            backend=self.backend,
            build=build,
        )
        task, _ = pot.resolve_task(self.task)
        if self.dispersion is not None:
            from sevenomni_core.dispersion import with_dispersion

            pot = with_dispersion(pot, self.dispersion)
            pot.dispersion.parameters(task)  # refuses double counting
        return pot, task


def maker_settings(maker: Any) -> dict:
    """The fields of a Maker that change its results, as JSON values, and
    its method's ``revision`` when it has been raised above 0.  Grouped
    settings appear under their old flat names (see
    :func:`~sevenomni_flows.jobs.settings.flat_settings`)."""
    values = {
        f.name: getattr(maker, f.name)
        for f in fields(maker)
        if f.name not in NOT_SETTINGS
    }
    values = flat_settings(maker, values)
    if getattr(maker, "revision", 0):
        values["revision"] = maker.revision
    return json.loads(json.dumps(values, default=_jsonable))


def _jsonable(value: Any) -> Any:
    """Pydantic settings (e.g. a slab protocol) as their fields, else str."""
    dump = getattr(value, "model_dump", None)
    return dump(exclude_none=True) if dump is not None else str(value)


def protocol(
    prop: str,
    pot: Potential,
    task: str | None,
    settings: dict,
    on: str,
    item: dict | None = None,
) -> dict:
    """Everything a result depends on (its reuse key is the hash of this).

    Parameters
    ----------
    prop : str
        The property.
    pot, task
        The model and resolved task (checkpoint sha256 and dtype are used).
    settings : dict
        The Maker's result-changing settings (:func:`maker_settings`).
    on : str
        The input structure's id (relaxation, or a property of a structure
        given as is), or the key of the relaxation the property is computed on.
    item : dict, optional
        What part of a multi-document calculation this is, e.g.
        ``{"miller_index": [1, 1, 1], "adsorbate": "CO"}``.
    """
    out = {
        "property": prop,
        "model_sha256": pot.sha256,
        "task": task,
        "dtype": str(pot.dtype).removeprefix("torch."),
        "dispersion": _dispersion(pot, task),
        "settings": settings,
        "on": on,
    }
    if item:
        out["item"] = item
    return out


def _dispersion(pot: Potential, task: str | None) -> dict | None:
    """The dispersion settings that change results (not library versions)."""
    info = pot.describe(task).get("dispersion")
    return None if info is None else {k: v for k, v in info.items() if k != "library"}


def reuse_key(proto: dict) -> str:
    """The 16-hex-digit hash of a protocol."""
    text = json.dumps(proto, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Target:
    """One calculation a job owes exactly one document for."""

    formula: str
    structure_id: str
    label: str
    protocol: dict
    extra: dict = field(default_factory=dict)
    key: str = field(init=False, default="")

    def __post_init__(self):
        object.__setattr__(self, "key", reuse_key(self.protocol))

    def fields(self) -> dict:
        """The identity fields of its document."""
        return {
            "formula": self.formula,
            "structure_id": self.structure_id,
            "label": self.label,
            "property": self.protocol["property"],
            "key": self.key,
            "protocol": self.protocol,
            **self.extra,
        }


#: What an input of a screening is: a screened ``material``, or a
#: ``reference`` a property of the set added beside them (see
#: :meth:`~sevenomni_flows.jobs.calculation.PropertyMaker.extra_inputs`):
#: relaxed, but owed no per-material property.
Role = Literal["material", "reference"]


@dataclass
class Item:
    """One input of a job, resolved: the structure to compute on and its material.

    ``on`` is what the calculation is computed on (a structure id or an
    upstream key); ``skip`` says why it cannot run (an unusable upstream
    result); ``error`` why the input itself is bad; ``task`` is the
    (resolved) task it is computed at; ``role`` what it is in a screening
    (its label carries no meaning).
    """

    formula: str
    structure_id: str
    label: str
    on: str
    structure: Structure | None = None
    skip: str | None = None
    error: str | None = None
    error_type: str | None = None
    source: Any = None
    sources: list[str] = field(default_factory=list)
    task: str | None = None
    role: Role = "material"


def as_structure(structure: Any) -> Structure:
    """A pymatgen Structure from a Structure, ASE Atoms, or a serialised dict.

    The one place ASE constraints enter: ``FixAtoms`` becomes
    ``selective_dynamics``, ``FixSymmetry`` its ``symprec`` in the
    :data:`~sevenomni_flows.schemas.provenance.FIX_SYMMETRY` property (both
    part of the structure's id); any other constraint raises ``ValueError``
    naming it, e.g. ``"constraint FixBondLengths is not supported
    (supported: FixAtoms, FixSymmetry)"``.
    """
    from ase.constraints import FixSymmetry

    if isinstance(structure, Structure):
        return structure
    if isinstance(structure, dict):
        return Structure.from_dict(structure)
    why = unsupported_constraint(structure)
    if why is not None:
        raise ValueError(why)
    symprec = symmetry_precision(structure)
    if symprec is not None:  # pymatgen would drop it, with a warning
        structure = structure.copy()
        structure.set_constraint(
            [c for c in structure.constraints if not isinstance(c, FixSymmetry)]
        )
    out = AseAtomsAdaptor.get_structure(structure)
    if symprec is not None:
        out.properties[FIX_SYMMETRY] = symprec
    return out


def constrained_atoms(structure: Structure) -> Atoms:
    """ASE atoms of ``structure`` with its constraints: ``FixAtoms`` from its
    ``selective_dynamics``, and ``FixSymmetry`` from its
    :data:`~sevenomni_flows.schemas.provenance.FIX_SYMMETRY` property."""
    from ase.constraints import FixSymmetry

    atoms = AseAtomsAdaptor.get_atoms(structure)
    symprec = atoms.info.pop(FIX_SYMMETRY, None)
    if symprec is not None:  # built on a copy: FixSymmetry refines its atoms
        fix = FixSymmetry(atoms.copy(), symprec=float(symprec))
        atoms.set_constraint([*atoms.constraints, fix])
    return atoms


def _upstream(doc: dict, label: str | None) -> Item:
    """An item computed on an upstream (relaxation) result."""
    item = Item(
        formula=doc.get("formula", "unknown"),
        structure_id=doc.get("structure_id", "unknown"),
        label=label or doc.get("label") or doc.get("formula", "unknown"),
        on=doc.get("key") or "unknown",
        sources=list(doc.get("sources") or []),
    )
    prop = doc.get("property")
    if doc.get("state") != "completed":
        item.skip = f"the {prop} step {doc.get('state')}: {doc.get('error')}"
    elif doc.get("converged") is False:
        item.skip = (
            f"the {prop} step did not converge within {doc.get('steps')} steps "
            f"(fmax {doc.get('fmax')} eV/Å)"
        )
    elif doc.get("structure") is None:
        item.skip = f"the {prop} step left no structure"
    else:
        item.structure = as_structure(doc["structure"])
    return item


def resolve_input(obj: Any, label: str | None = None) -> Item:
    """The structure to compute on, and the material it belongs to.

    ``obj`` is a structure (pymatgen, ASE or a serialised dict), or an
    upstream relaxation result (document or dict) whose relaxed structure is
    used and whose material it inherits.  Never raises: a bad input gives an
    item with ``error``, an unusable upstream result one with ``skip``.
    """
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump()
    if isinstance(obj, dict) and "property" in obj:
        return _upstream(obj, label)
    try:
        structure = as_structure(obj)
        sid = structure_id(structure)
    except Exception as err:  # anything a user can pass in
        return Item(
            formula="unknown",
            structure_id="unknown",
            label=label or "unknown",
            on="unknown",
            error=f"{label or 'input'}: not a structure: {err}",
            error_type=type(err).__name__,
        )
    formula = structure.composition.reduced_formula
    source = (structure.properties or {}).get("source")
    return Item(
        formula=formula,
        structure_id=sid,
        label=label or formula,
        on=sid,
        structure=structure,
        sources=[source] if isinstance(source, str) else [],
    )
