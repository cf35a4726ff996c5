"""The YAML run specification: validated, with errors that name key and line."""

from __future__ import annotations

import glob as globlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


class RelaxSettings(_Strict):
    fmax: float = Field(0.02, gt=0, description="Force threshold, eV/Å")
    max_steps: int = Field(500, ge=0)
    relax_cell: bool = True
    max_volume_change: float = Field(2.0, gt=1)


class ElasticSettings(_Strict):
    strain_magnitudes: list[float] = [-0.01, -0.005, 0.005, 0.01]
    fmax: float = Field(0.005, gt=0)


class PhononSettings(_Strict):
    min_length: float = Field(10.0, gt=0, description="Smallest supercell vector, Å")
    supercell: list[list[int]] | None = None
    displacement: float = Field(0.01, gt=0, description="Å")


class EosSettings(_Strict):
    linear_strains: list[float] = [-0.05, -0.03, -0.01, 0.01, 0.03, 0.05]
    eos: str = "birch_murnaghan"
    fmax: float = Field(0.01, gt=0)


class AdsorptionSettings(_Strict):
    """Molecules on metal surfaces cut from each (relaxed) bulk structure."""

    miller_indices: list[list[int]] = [[1, 1, 1]]
    adsorbates: list[str] = ["CO", "O", "H", "OH"]
    reference_scheme: Literal["gas", "oc20"] = "gas"
    n_random: int = Field(0, ge=0, description="Random placements besides the sites")
    min_slab_size: float = Field(7.0, gt=0, description="Å")
    min_vacuum: float = Field(12.0, gt=0, description="Å")
    min_lateral: float = Field(7.0, gt=0, description="Å")
    fix_fraction: float = Field(0.5, ge=0, le=1)
    fmax: float = Field(0.05, gt=0, description="eV/Å")
    max_steps: int = Field(300, ge=1)


class FrameworkEntry(_Strict):
    """A metal-organic framework and its guests."""

    file: str = Field(description="CIF of the framework")
    name: str | None = Field(None, description="Label, e.g. Mg-MOF-74")
    guests: list[str] = ["CO2", "H2O", "N2"]


class MofSettings(_Strict):
    """Guest placement and relaxation in frameworks."""

    n_random: int = Field(3, ge=0)
    open_metal_sites: bool = True
    max_metal_sites: int = Field(1, ge=0)
    fix_framework: bool = True
    min_length: float = Field(12.0, gt=0, description="Å, per cell axis")
    reference_scheme: Literal["gas", "oc20"] = "gas"
    fmax: float = Field(0.05, gt=0, description="eV/Å")
    max_steps: int = Field(500, ge=1)
    seed: int = 0


class RunSpec(_Strict):
    """A screening run."""

    model: str = "auto"
    task: str | None = None
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    structures: list[StructureEntry] = []
    properties: list[
        Literal["relax", "static", "elastic", "phonon", "eos", "adsorption"]
    ] = [
        "relax",
        "elastic",
        "phonon",
        "eos",
    ]
    relax: RelaxSettings = RelaxSettings()
    elastic: ElasticSettings = ElasticSettings()
    phonon: PhononSettings = PhononSettings()
    eos: EosSettings = EosSettings()
    adsorption: AdsorptionSettings = AdsorptionSettings()
    frameworks: list[FrameworkEntry] = []
    mof: MofSettings = MofSettings()
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

    A file that cannot be read gives its error text in place of a structure,
    so that it fails alone.
    """
    from ase.build import bulk
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

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
            label = entry.name if entry.name and entry.file else Path(f).name
            try:
                out.append((label, _read_file(f, Structure)))
            except Exception as err:  # parsers raise many kinds
                out.append((label, f"cannot read {f}: {err}"))
    return out


def _read_file(path: str, structure_cls):
    import warnings

    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.lower().endswith((".cif", ".mcif")) or Path(path).name.startswith(
            ("POSCAR", "CONTCAR")
        ):
            return structure_cls.from_file(path)
        return AseAtomsAdaptor.get_structure(read(path))
