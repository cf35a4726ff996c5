"""The YAML run specification: validated, with errors that name key and line."""

from __future__ import annotations

import dataclasses
import glob as globlib
from pathlib import Path
from typing import Any, ClassVar, Literal, get_type_hints

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from .jobs import ElasticMaker, EosMaker, PhononMaker, RelaxMaker
from .jobs.adsorption import MofAdsorptionMaker, SlabAdsorptionMaker, check_adsorbates
from .jobs.md import MDMaker
from .jobs.neb import KINDS, NebMaker
from .jobs.slab_convergence import SlabConvergenceMaker
from .jobs.widom import WidomMaker
from .submit.resources import ClusterSettings

__all__ = ["SpecError", "StructureEntry", "load_spec", "read_structures"]


class SpecError(ValueError):
    """An invalid spec file; the message names the key and its line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StructureEntry(_Strict):
    """One structure source: a file, a glob, or a simple bulk builder."""

    file: str | None = Field(None, description="CIF, POSCAR, extxyz, ... file")
    glob: str | None = Field(None, description="Glob of structure files")
    bulk: str | None = Field(None, description="Formula for ase.build.bulk, e.g. Cu")
    crystal: str | None = Field(
        None, description="fcc, bcc, hcp, diamond, rocksalt, ..."
    )
    a: float | None = Field(None, description="Lattice constant a, Å")
    c: float | None = Field(None, description="Lattice constant c, Å")
    cubic: bool = Field(False, description="Conventional cubic cell")
    name: str | None = Field(None, description="Label in tables")

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("file", "glob", "bulk") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'file', 'glob' or 'bulk'")
        if self.bulk is None and any(
            v is not None for v in (self.crystal, self.a, self.c)
        ):
            raise ValueError("'crystal', 'a' and 'c' go with 'bulk'")
        return self


class _Section(_Strict):
    """A spec section whose keys are a Maker's fields (one source of truth).

    Defaults come from the Maker, and the Maker's own checks run when the
    section is read, so a bad value is reported with its key and line.
    """

    _maker: ClassVar[type] = object
    _fixed: ClassVar[dict] = {}

    @model_validator(mode="after")
    def _check(self):
        self.maker()
        return self

    def maker(self, **extra):
        """The Maker this section describes."""
        return self._maker(**self.model_dump(), **self._fixed, **extra)


def section(maker: type, exclude: tuple[str, ...] = (), fixed: dict | None = None):
    """The spec section of a Maker: its result-changing fields, its defaults."""
    hints = get_type_hints(maker)
    skip = {"name", "settings", "plot_dir", *exclude, *(fixed or {})}
    fields_ = {}
    for f in dataclasses.fields(maker):
        if f.name in skip or not f.init:
            continue
        if f.default_factory is not dataclasses.MISSING:
            fields_[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
        else:
            fields_[f.name] = (hints[f.name], f.default)
    model = create_model(f"{maker.__name__}Section", __base__=_Section, **fields_)
    model._maker = maker
    model._fixed = dict(fixed or {})
    model.__doc__ = f"Settings of :class:`{maker.__name__}` (its fields)."
    return model


RelaxSettings = section(RelaxMaker)
ElasticSettings = section(ElasticMaker)
PhononSettings = section(PhononMaker)
EosSettings = section(EosMaker)
AdsorptionSettings = section(SlabAdsorptionMaker, fixed={"relax_bulk": False})
MofSettings = section(MofAdsorptionMaker, exclude=("guests",))
SlabConvergenceSettings = section(SlabConvergenceMaker)
WidomSettings = section(WidomMaker)
MDSettings = section(MDMaker, exclude=("trajectory_dir",))
NebSettings = section(NebMaker)


class BandEntry(_Strict):
    """One NEB band: a vacancy hop, an adsorbate hop on a surface, or a path."""

    kind: Literal[KINDS] = Field(description="vacancy, surface or path")
    name: str | None = Field(None, description="Label in tables")
    structure: StructureEntry | None = Field(
        None, description="The bulk (vacancy and surface bands)"
    )
    miller: list[int] | None = Field(None, description="Surface bands: Miller index")
    adsorbate: str | None = Field(None, description="Surface bands: what hops")
    start: str | None = Field(None, description="Surface bands: site kind, e.g. fcc")
    end: str | None = Field(None, description="Surface bands: site kind, e.g. hcp")
    initial: str | None = Field(None, description="Path bands: initial structure file")
    final: str | None = Field(None, description="Path bands: final structure file")

    @model_validator(mode="after")
    def _complete(self):
        need = {
            "vacancy": ["structure"],
            "surface": ["structure", "miller", "adsorbate", "start", "end"],
            "path": ["initial", "final"],
        }[self.kind]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a {self.kind} band needs {', '.join(missing)}")
        return self

    def describe(self, base: Path) -> tuple[str, dict | str]:
        """Its label and the NebMaker's band dict (or why it cannot be built)."""
        label = self.name or f"{self.kind} band"
        band = self.model_dump(exclude={"name", "structure", "initial", "final"})
        band = {k: v for k, v in band.items() if v is not None}
        sources = {
            "structure": self.structure,
            "initial": self.initial and StructureEntry(file=self.initial),
            "final": self.final and StructureEntry(file=self.final),
        }
        for key, entry in sources.items():
            if entry is not None:
                [(_, obj)] = read_structures([entry], base)[:1]
                if isinstance(obj, str):  # why it could not be read
                    return label, obj
                band[key] = obj.as_dict()
        return label, band


class FrameworkEntry(_Strict):
    """A metal-organic framework and its guests."""

    file: str = Field(description="CIF of the framework")
    name: str | None = Field(None, description="Label, e.g. Mg-MOF-74")
    guests: list[str] = ["CO2", "H2O", "N2"]

    @model_validator(mode="after")
    def _known_guests(self):
        self.guests = check_adsorbates(self.guests, "guests")
        return self


class RunSpec(_Strict):
    """A screening run."""

    model: str = "auto"
    task: str | None = None
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    dispersion: Literal["d3bj", "d3zero"] | None = Field(
        None, description="Add DFT-D3 with the task's functional (None: none)"
    )
    backend: Literal["e3nn", "cueq", "auto"] = Field(
        "e3nn",
        description="Kernels: e3nn, cueq (cuEquivariance) or auto (cueq on CUDA "
        "where its kernels are installed); results agree",
    )
    structures: list[StructureEntry] = []
    properties: list[
        Literal[
            "relax",
            "static",
            "elastic",
            "phonon",
            "eos",
            "adsorption",
            "slab_convergence",
            "md",
        ]
    ] = [
        "relax",
        "elastic",
        "phonon",
        "eos",
    ]
    relax: RelaxSettings = Field(default_factory=RelaxSettings)
    elastic: ElasticSettings = Field(default_factory=ElasticSettings)
    phonon: PhononSettings = Field(default_factory=PhononSettings)
    eos: EosSettings = Field(default_factory=EosSettings)
    adsorption: AdsorptionSettings = Field(default_factory=AdsorptionSettings)
    slab_convergence: SlabConvergenceSettings = Field(
        default_factory=SlabConvergenceSettings
    )
    md: MDSettings = Field(default_factory=MDSettings)
    bands: list[BandEntry] = Field(
        [], description="NEB bands, computed together with the neb: settings"
    )
    neb: NebSettings = Field(default_factory=NebSettings)
    frameworks: list[FrameworkEntry] = []
    framework_properties: list[Literal["adsorption", "widom"]] = Field(
        ["adsorption"],
        description="What runs on each framework: relaxed guest placements "
        "(adsorption, guests per framework) and Widom insertion (widom)",
    )
    mof: MofSettings = Field(default_factory=MofSettings)
    widom: WidomSettings = Field(default_factory=WidomSettings)
    store: str | None = Field(
        None,
        description="Results folder (embedded store; relative to the spec), "
        "a mongodb:// URI, or a jobflow store file",
    )
    cluster: ClusterSettings = Field(
        default_factory=ClusterSettings,
        description="Routing of jobs for `sevenomni submit` (run uses only "
        "structures_per_job)",
    )


def _line_of(node: yaml.Node, loc: tuple) -> int | None:
    """Line (1-based) of the YAML node at ``loc`` (the deepest one that exists)."""
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(part)]
            if not match:
                return line
            key, node = match[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def load_spec(path: str | Path) -> tuple[RunSpec, Path]:
    """Read and validate a spec; returns it and the folder paths are relative to.

    Raises
    ------
    SpecError
        Naming the file, the key and its line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError(f"{path}: cannot read the spec: {err}") from err
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the spec must be a mapping of keys to values")
    try:
        spec = RunSpec.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = tuple(
                p for p in e["loc"] if not (isinstance(p, str) and p[0].isupper())
            )
            key = ".".join(str(p) for p in loc) or "(top level)"
            line = _line_of(node, loc)
            what = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            lines.append(f"{path}:{line}: {key}: {what}")
        raise SpecError("invalid spec:\n  " + "\n  ".join(lines)) from err
    return spec, path.parent


def read_structures(entries: list[StructureEntry], base: Path) -> list[tuple[str, Any]]:
    """Structures of the spec as ``(label, Structure or error text)``.

    Every frame of a multi-frame file is a structure of its own, labelled
    ``file[frame]``; a file or frame that cannot be used (unreadable,
    partially occupied, no periodic cell) gives its error text in place of a
    structure, so that it fails alone.
    """
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    from sevenomni_core.io import read_frames

    out: list[tuple[str, Any]] = []
    for entry in entries:
        if entry.bulk is not None:
            label = entry.name or entry.bulk
            try:
                kwargs = {k: v for k, v in (("a", entry.a), ("c", entry.c)) if v}
                atoms = bulk(entry.bulk, entry.crystal, cubic=entry.cubic, **kwargs)
                out.append((label, AseAtomsAdaptor.get_structure(atoms)))
            except Exception as err:  # ase raises several kinds for bad input
                out.append((label, f"cannot build bulk {entry.bulk}: {err}"))
            continue
        if entry.glob is not None:
            files = sorted(globlib.glob(str(base / entry.glob)))
            if not files:
                out.append((entry.glob, f"no files match {entry.glob}"))
        else:
            files = [str(base / entry.file)]
        for f in files:
            frames = read_frames(f, periodic=True)
            for frame in frames:
                label = frame.label
                if entry.name and entry.file:
                    label = label.replace(Path(f).name, entry.name, 1)
                if frame.error is not None:
                    out.append((label, frame.error))
                    continue
                try:
                    out.append((label, AseAtomsAdaptor.get_structure(frame.atoms)))
                except Exception as err:  # pymatgen refuses some cells
                    out.append((label, f"{label}: not a usable structure: {err}"))
    return out
