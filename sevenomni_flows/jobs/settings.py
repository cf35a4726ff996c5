"""Settings that several Makers share, each defined once with its ranges.

A Maker holds them as fields (as atomate2 composes Makers): an inner
relaxation is a :class:`RelaxSettings`, phonons a :class:`PhononSettings`,
a temperature range a :class:`TemperatureGrid`, a slab the
:class:`~sevenomni_flows.adsorption.slab_protocol.SlabProtocol`.  Their
ranges and choices are in their types, so a spec checks them and names the
full key (``qha.phonon.displacement``).

A Maker takes each as its type (taken as it is) or as a mapping of some of
its keys; the keys not given keep the *Maker's* defaults
(``QhaMaker(relax={"max_steps": 500})`` keeps QHA's fmax, 0.005 eV/Å, where
``RelaxSettings(max_steps=500)`` has the type's, 0.05), see :func:`compose`.
A spec section reads a mapping the same way.  The flat names these
settings had before (``qha.fmax``) are accepted for one release, with a
message naming the new key: :data:`RENAMED` lists them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sevenomni_core.options import OPTIMIZERS

__all__ = [
    "RENAMED",
    "ImaginaryTol",
    "Mesh",
    "PhononSettings",
    "Positive",
    "RelaxSettings",
    "Supercell",
    "TemperatureGrid",
    "accepts_old_names",
    "check_supercell",
    "compose",
    "flat_settings",
    "over",
    "upgrade",
    "validated",
]

#: The flat names settings had before they were grouped, by Maker class:
#: old name -> new ``field.key``.  Accepted for one release (see
#: :func:`upgrade`); reuse keys still use the old names (:func:`flat_settings`),
#: so stored results stay reused.  An old name that is still a field (κ's
#: ``temperatures``) is not renamed: its type takes the old value.
_RELAX = {"fmax": "relax.fmax", "max_steps": "relax.max_steps"}
_PHONON = {
    name: f"phonon.{name}"
    for name in ("min_length", "supercell", "displacement", "mesh", "imaginary_tol")
}
RENAMED: dict[str, dict[str, str]] = {
    "QhaMaker": {
        **_RELAX,
        **_PHONON,
        "t_max": "temperatures.t_max",
        "t_step": "temperatures.t_step",
    },
    "ThermalConductivityMaker": {
        **_PHONON,
        "temperatures": "temperatures.values",
        "t_min": "temperatures.t_min",
        "t_max": "temperatures.t_max",
        "t_step": "temperatures.t_step",
    },
    "ElasticMaker": _RELAX,
    "EosMaker": _RELAX,
    "SurfaceEnergyMaker": _RELAX,
    "SlabAdsorptionMaker": {
        **_RELAX,
        "optimizer": "relax.optimizer",
        "bulk_fmax": "bulk_relax.fmax",
    },
    "SlabConvergenceMaker": {**_RELAX, "optimizer": "relax.optimizer"},
    "MofAdsorptionMaker": {**_RELAX, "optimizer": "relax.optimizer"},
    "NebMaker": {
        "relax_fmax": "relax.fmax",
        "relax_steps": "relax.max_steps",
        "relax_optimizer": "relax.optimizer",
    },
    "WidomMaker": {
        f"{role}_{key}": f"{role}_relax.{key}"
        for role in ("framework", "guest", "site")
        for key in ("fmax", "max_steps")
    },
}


def check_supercell(matrix) -> list[list[int]]:
    """A 3x3 integer supercell matrix with a positive determinant."""
    try:
        arr = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (3, 3):
        raise ValueError(f"must be a 3x3 matrix, got {matrix}")
    if not np.allclose(arr, np.round(arr)):
        raise ValueError(f"must hold integers, got {matrix}")
    if round(np.linalg.det(arr)) < 1:
        raise ValueError(f"must have a positive determinant, got {matrix}")
    return np.round(arr).astype(int).tolist()


#: A supercell matrix: 3x3 integers, positive determinant.
Supercell = Annotated[list[list[int]], AfterValidator(check_supercell)]
#: A number > 0.
Positive = Annotated[float, Field(gt=0)]
#: A q-mesh: a length (Å, phonopy's) or 3 positive integers.
Mesh = (
    Positive
    | Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=3, max_length=3)]
)
#: A frequency <= 0 (THz) below which a mode is imaginary.
ImaginaryTol = Annotated[float, Field(le=0)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Groups of keys that are alternatives: one given replaces the
    #: defaults' choice (see :func:`over`).
    alternatives: ClassVar[tuple[tuple[str, ...], ...]] = ()


class RelaxSettings(_Settings):
    """An inner relaxation: force threshold, most steps, optimizer."""

    fmax: Positive = Field(0.05, description="Force threshold, eV/Å")
    max_steps: Annotated[int, Field(ge=1)] = Field(300, description="Most steps")
    optimizer: Literal[tuple(OPTIMIZERS)] = Field(
        "fire", description="ASE's FIRE, LBFGS or BFGS (batched)"
    )


class PhononSettings(_Settings):
    """Finite-displacement phonons: supercell, displacement, q-mesh, and the
    frequency below which a mode counts as imaginary."""

    min_length: Positive = Field(
        10.0,
        description="Å: without supercell, the diagonal supercell of the "
        "standardized primitive cell whose lattice vectors are at least this long",
    )
    supercell: Supercell | None = Field(
        None, description="Supercell matrix of the input cell (3x3 integers)"
    )
    displacement: Positive = Field(0.01, description="Finite displacement, Å")
    mesh: Mesh = Field(60.0, description="q-mesh: a length (Å) or 3 integers")
    imaginary_tol: ImaginaryTol = Field(
        -0.05, description="THz: a mode below this is imaginary"
    )


class TemperatureGrid(_Settings):
    """Temperatures: a list (``values``), else ``t_min, t_min + t_step, ...,
    t_max``.  A bare list may be given for ``values``."""

    values: list[Positive] | None = Field(
        None, min_length=1, description="K; replaces t_min, t_max and t_step"
    )
    t_min: Annotated[float, Field(ge=0)] = Field(0.0, description="K")
    t_max: Positive = Field(1000.0, description="K")
    t_step: Positive = Field(10.0, description="K")

    @model_validator(mode="before")
    @classmethod
    def expand(cls, data):
        """A bare list as ``{"values": list}``."""
        return {"values": data} if isinstance(data, list | tuple) else data

    @model_validator(mode="after")
    def _ordered(self):
        if self.values is None and self.t_min > self.t_max:
            raise ValueError(
                f"t_min ({self.t_min}) must not exceed t_max ({self.t_max})"
            )
        return self

    def kelvin(self) -> list[float]:
        """The temperatures, K."""
        if self.values is not None:
            return [float(t) for t in self.values]
        n = int(np.floor((self.t_max - self.t_min) / self.t_step + 1e-9))
        return (self.t_min + self.t_step * np.arange(n + 1)).tolist()


def over(default: BaseModel, given: Any) -> Any:
    """``given`` (a mapping of some keys) over a Maker's ``default``: the keys
    not given keep the default's values; a key given in place of its
    alternative replaces the default's choice.  A preset, a model or a short
    form (a preset name, a list) is taken as it is."""
    expand = getattr(type(default), "expand", None)
    given = given if expand is None else expand(given)
    if not isinstance(given, dict) or given.get("preset") is not None:
        return given
    base = default.model_dump(exclude_none=True)
    base.pop("preset", None)  # its values are in base
    for group in getattr(default, "alternatives", ()):
        if any(given.get(k) is not None for k in group):
            for k in group:
                base.pop(k, None)
    return base | given


def settings_defaults(maker: type) -> dict[str, BaseModel]:
    """The default of each settings field of a Maker class, by field name."""
    out = {}
    for f in dataclasses.fields(maker):
        if f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            if isinstance(value, BaseModel):
                out[f.name] = value
    return out


def compose(maker: Any) -> None:
    """Each settings field of ``maker`` as its type, a mapping taken over the
    Maker's default (:func:`over`); a ValueError names the spec key."""
    for name, default in settings_defaults(type(maker)).items():
        value = getattr(maker, name)
        if not isinstance(value, type(default)):
            value = validated(maker, type(default), over(default, value), name)
            setattr(maker, name, value)


def validated(maker: Any, kind: type, value: Any, name: str | None = None):
    """``value`` as a ``kind``; a ValueError names each bad key as the spec
    does (``qha.phonon.displacement: ...``; without ``name`` the keys are
    the Maker's own, ``phonon.displacement``)."""
    try:
        return kind.model_validate(value)
    except ValidationError as err:
        where = [name] if name else []
        reasons = "; ".join(
            f"{maker.spec_key('.'.join(map(str, [*where, *e['loc']])))}: "
            + e["msg"].removeprefix("Value error, ")
            for e in err.errors()
        )
        raise ValueError(reasons) from None


def upgrade(maker: type, values: dict) -> dict:
    """``values`` with the old flat names of :data:`RENAMED` moved to their
    new keys, each with a FutureWarning naming both."""
    table = RENAMED.get(maker.__name__, {})
    names = {f.name for f in dataclasses.fields(maker)}
    out = dict(values)
    for old, new in table.items():
        if old in names or old not in out:
            continue
        outer, inner = new.split(".")
        group = out.get(outer) or {}
        if not isinstance(group, dict):  # a model, or a short form (a list)
            kind = type(settings_defaults(maker)[outer])
            group = kind.model_validate(group).model_dump(exclude_unset=True)
        if inner in group:
            raise ValueError(
                f"{maker.spec_key(old)} and {maker.spec_key(new)} both given: "
                f"keep {maker.spec_key(new)}"
            )
        out[outer] = {**group, inner: out.pop(old)}
        warnings.warn(
            f"{maker.spec_key(old)} is deprecated: use {maker.spec_key(new)}",
            FutureWarning,
            stacklevel=3,
        )
    return out


def accepts_old_names(cls: type) -> type:
    """Let a Maker dataclass take the old names of :data:`RENAMED` as keyword
    arguments for one release (with a FutureWarning naming the new key)."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **upgrade(type(self), kwargs))

    __init__.__signature__ = inspect.signature(init)  # monty's as_dict reads it
    cls.__init__ = __init__
    return cls


def flat_settings(maker: Any, values: dict) -> dict:
    """``values`` (a Maker's settings) with each grouped setting under its
    old flat name (:data:`RENAMED`), so that an unchanged setting keeps its
    reuse key; a key added since (``relax.optimizer`` where there was none)
    enters only when it differs from the Maker's default."""
    table = RENAMED.get(type(maker).__name__, {})
    back = {new: old for old, new in table.items()}
    defaults = settings_defaults(type(maker))
    groups = {new.split(".")[0] for new in back}
    out = {}
    for name, value in values.items():
        if name not in groups or not isinstance(value, BaseModel):
            out[name] = value
            continue
        default = defaults[name].model_dump(mode="json")
        for key, sub in value.model_dump(mode="json").items():
            if f"{name}.{key}" in back:
                out[back[f"{name}.{key}"]] = sub
            elif sub != default.get(key):
                out[f"{name}.{key}"] = sub
    return out
