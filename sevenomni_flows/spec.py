"""The YAML run specification: validated, with errors that name key and line."""

from __future__ import annotations

import dataclasses
import glob as globlib
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, get_type_hints

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .adsorption import core_mof as core_mof_db
from .flows.screening import DEFAULT_PROPERTIES
from .jobs.base import NOT_SETTINGS, ModelSettings
from .jobs.registry import makers
from .jobs.settings import over, settings_defaults, upgrade
from .properties.adsorption import DEFAULT_GUESTS, check_adsorbates
from .properties.neb import KINDS
from .submit.resources import ClusterSettings

__all__ = [
    "Input",
    "SpecError",
    "StructureEntry",
    "key_line",
    "load_spec",
    "read_structures",
]


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

    @model_validator(mode="before")
    @classmethod
    def _settings(cls, data):
        """Old flat names moved to their groups (with a message), and each
        group given in part completed from the Maker's defaults."""
        if not isinstance(data, dict):
            return data
        data = upgrade(cls._maker, data)
        defaults = settings_defaults(cls._maker)
        return {
            k: over(defaults[k], v) if k in defaults else v for k, v in data.items()
        }

    @model_validator(mode="after")
    def _check(self):
        self.maker()
        return self

    def maker(self, **extra):
        """The Maker this section describes (``extra``: fields it has, e.g.
        ``plot_dir``; others are ignored)."""
        names = {f.name for f in dataclasses.fields(self._maker)}
        extra = {k: v for k, v in extra.items() if k in names}
        return self._maker(**dict(self), **self._fixed, **extra)


def _fields(cls: type, skip: set[str]) -> dict[str, tuple]:
    """Pydantic field definitions from a dataclass's fields and defaults."""
    hints = get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        kwargs = {"description": f.metadata["description"]} if f.metadata else {}
        if f.default_factory is not dataclasses.MISSING:
            out[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
        else:
            out[f.name] = (hints[f.name], Field(f.default, **kwargs))
    return out


def section(maker: type):
    """The spec section of a Maker: its result-changing fields, its defaults."""
    skip = {*NOT_SETTINGS, *maker.spec_exclude, *maker.spec_fixed}
    model = create_model(
        f"{maker.__name__}Section", __base__=_Section, **_fields(maker, skip)
    )
    model._maker = maker
    model._fixed = dict(maker.spec_fixed)
    model.__doc__ = f"Settings of :class:`{maker.__name__}` (its fields)."
    return model


#: The spec section of every registered property Maker, by section name.
SECTIONS = {name: section(cls) for name, cls in makers().items()}
#: ``properties:`` choices (on each material) and ``framework_properties:``.
MATERIAL_PROPERTIES = tuple(makers("material"))
FRAMEWORK_PROPERTIES = {cls.property: name for name, cls in makers("framework").items()}


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
                obj = read_structures([entry], base)[0].structure
                if isinstance(obj, str):  # why it could not be read
                    return label, obj
                band[key] = obj.as_dict()
        return label, band


class FrameworkEntry(_Strict):
    """Metal-organic frameworks and their guests: a CIF, a glob of CIFs, or
    entries of the CoRE MOF database (see :mod:`sevenomni_flows.run.frameworks`).
    """

    file: str | None = Field(None, description="CIF of the framework")
    glob: str | None = Field(None, description="Glob of CIFs, e.g. cifs/*.cif")
    core_mof: Literal[core_mof_db.DATASETS] | None = Field(
        None, description="CoRE MOF data set (pip install core-mof), e.g. 2019-ASR"
    )
    filter: dict[str, Any] = Field(
        {},
        description="core_mof: conditions on its columns, e.g. {Has_OMS: true, "
        "PLD: {$gt: 3.5}} (PLD, LCD in Å)",
    )
    limit: int | None = Field(
        None, ge=1, description="core_mof: at most this many, by refcode"
    )
    name: str | None = Field(None, description="Label, e.g. Mg-MOF-74 (file only)")
    pld: float | None = Field(
        None,
        gt=0,
        description="Pore-limiting diameter, Å (file and glob; core_mof uses "
        "its PLD): larger guests fail as pore-blocked",
    )
    guests: list[str] = list(DEFAULT_GUESTS)

    @field_validator("core_mof", mode="before")
    @classmethod
    def _installed(cls, value):
        if value in core_mof_db.DATASETS:
            try:
                core_mof_db.require()
            except ImportError as err:
                raise ValueError(str(err)) from err
        return value

    @field_validator("filter")
    @classmethod
    def _known_columns(cls, value, info):
        dataset = info.data.get("core_mof")
        if value and dataset is not None:
            return core_mof_db.check_filter(dataset, value)
        return value

    @model_validator(mode="after")
    def _known_guests(self):
        given = [k for k in ("file", "glob", "core_mof") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of 'file', 'glob' or 'core_mof'")
        if self.core_mof is None and (self.filter or self.limit is not None):
            raise ValueError("'filter' and 'limit' go with 'core_mof'")
        if self.core_mof is not None and self.pld is not None:
            raise ValueError("'pld' goes with 'file' or 'glob' (core_mof has its own)")
        if self.name is not None and self.file is None:
            raise ValueError("'name' goes with 'file' (the others use file names)")
        self.guests = check_adsorbates(self.guests, "guests")
        return self


class _RunBase(_Strict):
    """What a run computes on: structures, frameworks, bands, and where."""

    structures: list[StructureEntry] = []
    properties: list[Literal[MATERIAL_PROPERTIES]] = list(DEFAULT_PROPERTIES)
    bands: list[BandEntry] = Field(
        [], description="NEB bands, computed together with the neb: settings"
    )
    frameworks: list[FrameworkEntry] = []
    framework_properties: list[Literal[tuple(FRAMEWORK_PROPERTIES)]] = Field(
        ["adsorption"],
        description="What runs on each framework: relaxed guest placements "
        "(adsorption, guests per framework) and Widom insertion (widom)",
    )
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

    task: str | list[str] | None = Field(
        None,
        description="Task (fidelity); None: the default.  A list, e.g. [PBE, "
        "R2SCAN], computes everything once per task (multi-task models only)",
    )

    @model_validator(mode="after")
    def _task_list(self):
        if isinstance(self.task, list) and (
            not self.task or len(set(self.task)) != len(self.task)
        ):
            raise ValueError(f"task: give distinct task names, got {self.task}")
        return self

    def tasks(self) -> list[str | None]:
        """The tasks a run computes at, in the spec's order."""
        return list(self.task) if isinstance(self.task, list) else [self.task]

    def model_settings(self, task: str | None = None) -> ModelSettings:
        """The model block (model, task, device, ...) as settings, at ``task``
        (default: the first of :meth:`tasks`)."""
        values = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(ModelSettings)
        }
        values["task"] = task if task is not None else self.tasks()[0]
        return ModelSettings(**values)

    def maker(self, name: str, **extra):
        """The Maker of spec section ``name``, configured by it."""
        return getattr(self, name).maker(**extra)


#: A screening run: the model block (from :class:`ModelSettings`), what to
#: compute on, and one section per registered property Maker.
RunSpec = create_model(
    "RunSpec",
    __base__=_RunBase,
    __doc__="A screening run.",
    **_fields(ModelSettings, {"task"}),  # task: one or a list (_RunBase)
    **{name: (model, Field(default_factory=model)) for name, model in SECTIONS.items()},
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


def key_line(path: str | Path, *loc) -> str:
    """``path:line`` of the key at ``loc`` in a YAML file (``path`` if unreadable)."""
    try:
        node = yaml.compose(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return str(path)
    return str(path) if node is None else f"{path}:{_line_of(node, loc)}"


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
        with warnings.catch_warnings(record=True) as renamed:
            warnings.simplefilter("always", FutureWarning)
            spec = RunSpec.model_validate(data)
        for w in renamed:  # an old name: say where
            text = str(w.message)
            if w.category is FutureWarning and " is deprecated: use " in text:
                line = _line_of(node, tuple(text.split(" ")[0].split(".")))
                warnings.warn(f"{path}:{line}: {text}", FutureWarning, stacklevel=2)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
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


class Input(NamedTuple):
    """One structure a spec names: its label, the structure (or why it cannot
    be used, as text) and where it came from (file path and frame, or the
    bulk builder)."""

    label: str
    structure: Any
    source: str


def _bulk(entry: StructureEntry) -> Input:
    from ase.build import bulk
    from ase.data import atomic_numbers
    from pymatgen.core import Composition
    from pymatgen.io.ase import AseAtomsAdaptor

    label = entry.name or entry.bulk
    source = f"bulk {entry.bulk}" + (f" ({entry.crystal})" if entry.crystal else "")
    try:
        unknown = [
            str(el) for el in Composition(entry.bulk) if str(el) not in atomic_numbers
        ]
    except Exception:  # pymatgen raises several kinds on a bad formula
        unknown = [entry.bulk]
    if unknown:
        why = f"bulk {entry.bulk!r}: {', '.join(map(repr, unknown))} is not a "
        return Input(label, why + "chemical element (or formula)", source)
    try:
        kwargs = {k: v for k, v in (("a", entry.a), ("c", entry.c)) if v}
        atoms = bulk(entry.bulk, entry.crystal, cubic=entry.cubic, **kwargs)
        return Input(label, AseAtomsAdaptor.get_structure(atoms), source)
    except Exception as err:  # ase raises several kinds for bad input
        return Input(label, f"cannot build bulk {entry.bulk}: {err}", source)


def read_structures(entries: list[StructureEntry], base: Path) -> list[Input]:
    """The structures of a spec, one :class:`Input` each.

    Labels: an entry's ``name``; else a frame's own name in a multi-frame
    file (``label``/``name`` in extxyz or an ASE database, a CIF's data
    block); else the file name with ``[frame]`` (a glob's files by their
    path relative to the spec, so ``mp-*/POSCAR`` keeps ``mp-1/POSCAR``).
    The source is always the path and frame.  A file or frame that cannot
    be used (unreadable, partially occupied, no periodic cell) gives its
    error text in place of a structure, so that it fails alone.
    """
    from sevenomni_core.io import read_frames

    from .jobs.base import as_structure

    out: list[Input] = []
    for entry in entries:
        if entry.bulk is not None:
            out.append(_bulk(entry))
            continue
        if entry.glob is not None:
            files = sorted(globlib.glob(str(base / entry.glob)))
            if not files:
                out.append(Input(entry.glob, f"no files match {entry.glob}", ""))
            typed = [os.path.relpath(f, base) for f in files]
        else:
            files, typed = [str(base / entry.file)], [entry.file]
        for f, given in zip(files, typed, strict=True):
            frames = read_frames(f, periodic=True, label=given)
            for frame in frames:
                label = frame.label
                if entry.file:
                    label = label.replace(given, entry.name or Path(given).name, 1)
                if frame.name and len(frames) > 1 and not entry.name:
                    label = frame.name
                if frame.error is not None:
                    out.append(Input(label, frame.error, frame.label))
                    continue
                try:
                    structure = as_structure(frame.atoms)
                    out.append(Input(label, structure, frame.label))
                except Exception as err:  # pymatgen refuses some cells
                    why = f"{label}: not a usable structure: {err}"
                    out.append(Input(label, why, frame.label))
    return out
