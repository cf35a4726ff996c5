"""The slab protocol in the user's terms: layers, fixed layers, lateral size, vacuum.

An adsorption energy on a slab depends on the protocol as much as on the
model: a 3-layer slab with one fixed layer binds CO on Pt(111) about 0.1 eV
differently from a 4-layer slab with two, as large as the model's claimed
accuracy.  So the protocol is stated, checked, recorded in every document
and part of the reuse key.

Each of three choices is made one of two ways:

- thickness: ``layers`` (exact number of atomic layers) or
  ``min_thickness`` (Å, pymatgen's ``min_slab_size``);
- constraints: ``fixed_layers`` (bottom layers held fixed) or
  ``free_layers`` (only the top layers move);
- lateral size: ``supercell`` ``[n, m]`` of the surface cell, or
  ``min_lateral`` (Å), the smallest supercell whose shortest in-plane
  periodic image distance is at least this.

Presets (:data:`PRESETS`) follow published protocols; keys given beside a
preset override it (an alternative replaces the preset's choice).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["PRESETS", "PRESET_SOURCES", "SlabProtocol"]

#: Named protocols.  See :data:`PRESET_SOURCES`.
PRESETS: dict[str, dict] = {
    "oc20": {
        "min_thickness": 7.0,
        "free_layers": 1,
        "min_lateral": 8.0,
        "vacuum": 20.0,
    },
    "converged": {"layers": 4, "fixed_layers": 2, "min_lateral": 8.0, "vacuum": 15.0},
}

#: Where each preset comes from.
PRESET_SOURCES = {
    "oc20": "Open Catalyst 2020 (Chanussot et al., ACS Catal. 11, 6059 (2021); "
    "slab code of fairchem-data-oc): slabs at least 7 Å thick, tiled to at "
    "least 8 Å in-plane, 20 Å vacuum, subsurface atoms fixed.  OC20 frees the "
    "under-coordinated surface atoms; on flat close-packed surfaces that is "
    "the top layer, which is what this preset frees.",
    "converged": "4 layers with the bottom 2 fixed, in-plane images at least "
    "8 Å apart (3x3 on close-packed metals, 1/9 ML), 15 Å vacuum: the common "
    "metal-surface protocol (e.g. the Catalysis-Hub surface reaction sets), "
    "and the smallest slab whose adsorption energies on Pt(111) lie within "
    "0.03 eV of 6 layers with the shipped models (see the slab convergence "
    "table in docs/adsorption.md; check your own with the slab_convergence "
    "property).",
}

_AtLeastOne = Annotated[int, Field(ge=1)]
_Positive = Annotated[float, Field(gt=0)]

_CHOICES = (
    ("layers", "min_thickness"),
    ("fixed_layers", "free_layers"),
    ("supercell", "min_lateral"),
)


class SlabProtocol(BaseModel):
    """How a slab is built (see the module docstring).

    A bare preset name may be given instead of a mapping.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Keys that are alternatives: one given replaces the other (of a preset,
    #: or of a Maker's default slab given in part).
    alternatives: ClassVar[tuple[tuple[str, str], ...]] = _CHOICES

    preset: Literal["oc20", "converged"] | None = Field(
        None, description="Named protocol; other keys override it"
    )
    layers: _AtLeastOne | None = Field(None, description="Atomic layers, exactly")
    min_thickness: _Positive | None = Field(
        None, description="Å; alternative to layers (pymatgen min_slab_size)"
    )
    fixed_layers: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Bottom layers held fixed"
    )
    free_layers: _AtLeastOne | None = Field(
        None, description="Top layers that move; alternative to fixed_layers"
    )
    supercell: tuple[_AtLeastOne, _AtLeastOne] | None = Field(
        None, description="Repeats [n, m] of the surface cell"
    )
    min_lateral: _Positive | None = Field(
        None,
        description="Å; alternative to supercell: the smallest supercell whose "
        "in-plane periodic images are at least this far apart",
    )
    vacuum: _Positive | None = Field(None, description="Å between the slab's images")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data):
        if isinstance(data, str):
            data = {"preset": data}
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        name = data["preset"]
        if name not in PRESETS:
            return data  # the Literal reports it
        values = dict(PRESETS[name])
        for choice in _CHOICES:
            if any(data.get(k) is not None for k in choice):
                for k in choice:
                    values.pop(k, None)
        return values | {k: v for k, v in data.items() if v is not None}

    @model_validator(mode="after")
    def _check(self):
        if self.layers is not None and self.fixed_layers is not None:
            if self.fixed_layers >= self.layers:
                raise ValueError(
                    f"fixed_layers ({self.fixed_layers}) must be fewer than layers "
                    f"({self.layers}): at least the top layer has to move"
                )
        for a, b in _CHOICES:
            given = [k for k in (a, b) if getattr(self, k) is not None]
            if len(given) != 1:
                raise ValueError(f"give exactly one of {a!r} or {b!r} (or a preset)")
        if self.vacuum is None:
            raise ValueError("give vacuum (Å) (or a preset)")
        return self

    @classmethod
    def checked(cls, value, what: str) -> SlabProtocol:
        """``value`` validated; a ValueError starting with ``what`` if bad."""
        try:
            return cls.model_validate(value)
        except ValidationError as err:
            reasons = "; ".join(
                ".".join(map(str, e["loc"]))
                + (": " if e["loc"] else "")
                + e["msg"].removeprefix("Value error, ")
                for e in err.errors()
            )
            raise ValueError(f"{what}: {reasons}") from None

    def n_fixed(self, n_layers: int, what: str) -> int:
        """Fixed bottom layers of a slab with ``n_layers`` layers."""
        fixed = (
            self.fixed_layers
            if self.fixed_layers is not None
            else n_layers - self.free_layers
        )
        if fixed >= n_layers or fixed < 0:
            raise ValueError(
                f"{what}: the slab has {n_layers} layers, so it cannot have "
                f"{self.fixed_layers} fixed layers"
                if self.fixed_layers is not None
                else f"{what}: the slab has {n_layers} layers, fewer than "
                f"free_layers ({self.free_layers})"
            )
        return fixed
