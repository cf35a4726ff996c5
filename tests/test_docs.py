"""The docs match the code: generated pages are current, every flag and
property is named, and every module or file a page names exists.

The generated pages are rewritten with ``python -m
sevenomni_flows.docs_reference`` (the failure messages say so).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import re
import shlex
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from sevenomni_flows import docs_reference as ref
from sevenomni_flows import spec as spec_module
from sevenomni_flows.jobs.registry import makers

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------ generated pages


def test_spec_reference_page_is_current():
    """docs/spec-reference.md is what the spec model generates."""
    page = _read(DOCS / "spec-reference.md")
    assert page == ref.spec_reference(), (
        f"docs/spec-reference.md is out of date: run `{ref.REGENERATE}`"
    )


def test_spec_reference_names_every_section_and_key():
    """Every section of the spec and every key of a property section is on
    the page (a sanity check of the walk, not only of its stability)."""
    page = _read(DOCS / "spec-reference.md")
    for name in spec_module.RunSpec.model_fields:
        assert f"`{name}`" in page, name
    for section, model in spec_module.SECTIONS.items():
        part = page.split(f"## `{section}`\n", 1)[1].split("\n## ", 1)[0]
        for key in model.model_fields:
            assert f"| `{key}" in part, f"{section}.{key}"


def test_cli_reference_is_current():
    """The generated part of docs/cli.md is what the parser generates."""
    page = _read(DOCS / "cli.md")
    assert page == ref.with_cli_reference(page, ref.cli_reference()), (
        f"the generated part of docs/cli.md is out of date: run `{ref.REGENERATE}`"
    )


def _command_part(page: str, command: str) -> str:
    title = f"### `sevenomni {command}`" if command else "### `sevenomni`"
    assert title in page, f"docs/cli.md has no heading {title!r}"
    return page.split(title + "\n", 1)[1].split("\n### ", 1)[0]


def _undocumented(page: str, flags: dict[str, list[str]]) -> list[str]:
    """``sevenomni COMMAND --flag`` for each flag not in its command's part."""
    return [
        " ".join(filter(None, ["sevenomni", command, flag]))
        for command, names in flags.items()
        for flag in names
        if flag not in {"-h", "--help"}
        and f"`{flag}`" not in _command_part(page, command)
    ]


def test_every_flag_is_in_cli_md():
    """Each command of ``sevenomni`` has its part of docs/cli.md, naming
    every one of its flags: a new flag without docs fails here."""
    flags = ref.cli_flags()
    assert {"run", "query", "submit"} <= set(flags)
    missing = _undocumented(_read(DOCS / "cli.md"), flags)
    assert not missing, f"not in docs/cli.md: {missing}; run `{ref.REGENERATE}`"


def test_flag_check_finds_a_new_flag():
    """Control: a flag added to ``run`` (and present under another command)
    is reported until the page is regenerated."""
    from sevenomni_flows.cli import build_parser

    parser = build_parser()
    ref.subcommands(parser)["run"].add_argument("--format", help="new")
    page = _read(DOCS / "cli.md")
    assert _undocumented(page, ref.cli_flags(parser)) == ["sevenomni run --format"]
    page = ref.with_cli_reference(page, ref.cli_reference(parser))
    assert _undocumented(page, ref.cli_flags(parser)) == []


def test_every_argument_says_what_it_is():
    """Every argument of every command has help text (the docs' rows would
    be blank without it)."""
    from sevenomni_flows.cli import build_parser

    parser = build_parser()
    commands = {"": parser, **ref.subcommands(parser)}
    silent = [
        f"sevenomni {name} {action.option_strings or action.dest}"
        for name, command in commands.items()
        for action in command._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]
    assert not silent, f"arguments without help: {silent}"


def _examples(text: str) -> list[str]:
    """The ``sevenomni ...`` command lines of a page's ```bash blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip().startswith("sevenomni ")
    ]


def _bad_example(parser, line: str) -> str | None:
    """Why an example command line is wrong (None if it parses and the
    files it names in ``workflows/`` exist; ``spec.yaml`` stands for yours)."""
    words = shlex.split(line, comments=True)[1:]
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            args = parser.parse_args(words)
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1]
    files = [getattr(args, k, None) for k in ("spec", "config")]
    files += getattr(args, "structures", None) or []
    shipped = [f for f in files if f and f.startswith("workflows/")]
    missing = [f for f in shipped if not (ROOT / f).exists()]
    return f"no such file: {missing}" if missing else None


def test_example_commands_parse():
    """Every ``sevenomni`` line of a ```bash block in the README and the
    docs parses with the real parser, and the shipped files it names exist."""
    from sevenomni_flows.cli import build_parser

    parser = build_parser()
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    examples = [(p.name, line) for p in pages for line in _examples(_read(p))]
    assert len(examples) >= 10, examples  # cli.md's examples are found
    bad = {line: why for _, line in examples if (why := _bad_example(parser, line))}
    assert not bad, f"example commands that would fail: {bad}"


def test_example_check_finds_a_wrong_flag_and_file():
    """Control: an unknown flag and a missing spec are reported."""
    from sevenomni_flows.cli import build_parser

    parser = build_parser()
    assert _bad_example(parser, "sevenomni run workflows/quickstart.yaml") is None
    assert "--stroe" in _bad_example(
        parser, "sevenomni run workflows/quickstart.yaml --stroe x"
    )
    assert "no_such.yaml" in _bad_example(
        parser, "sevenomni run workflows/no_such.yaml"
    )
    assert _bad_example(parser, "sevenomni run my_spec.yaml") is None


def test_regenerate_command_rewrites_and_checks(tmp_path, capsys):
    """``--check`` fails on a stale page and names the command; a run
    without it rewrites the page, after which ``--check`` passes."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cli.md").write_text(_read(DOCS / "cli.md"), encoding="utf-8")
    stale = _read(DOCS / "spec-reference.md").replace("| `fmax` |", "| `fmx` |", 1)
    (docs / "spec-reference.md").write_text(stale, encoding="utf-8")
    assert ref.main(["--docs", str(docs), "--check"]) == 1
    assert ref.REGENERATE in capsys.readouterr().out
    assert ref.main(["--docs", str(docs)]) == 0
    assert ref.main(["--docs", str(docs), "--check"]) == 0
    assert _read(docs / "spec-reference.md") == _read(DOCS / "spec-reference.md")


class _Nested(BaseModel):
    """A nested section."""

    vacuum: float | None = Field(None, description="Å between images")


class _Entry(BaseModel):
    """One entry of a list."""

    name: str = Field(description="Label")


@dataclasses.dataclass
class _Grid:
    """A section written as a dataclass."""

    t_min: float = dataclasses.field(default=0.0, metadata={"description": "K: lowest"})


class _Toy(BaseModel):
    """A spec with one key of each kind the walk must read."""

    fmax: Annotated[float, Field(gt=0, description="Force threshold, eV/Å")] = 0.05
    steps: int = Field(300, ge=0, le=1000, description="Most steps")
    mode: Literal["fast", "slow"] = Field("fast", description="How")
    temperatures: list[Annotated[float, Field(gt=0)]] = Field(
        [300.0], description="K, one run each"
    )
    energy: float = Field(
        0.0, description="An energy", json_schema_extra={"unit": "eV/atom"}
    )
    slab: _Nested = Field(default_factory=_Nested)
    entries: list[_Entry] = []
    tgrid: _Grid = Field(default_factory=_Grid)
    grid: list[float] | _Nested = Field([1.0, 2.0], description="A list, or keys")
    quiet: int = 0  # no description


def test_spec_reference_reads_types_defaults_units_and_ranges(monkeypatch):
    """On a toy spec (not the one the page was made from): each key's row
    has the type, default, unit and range its annotation says."""
    monkeypatch.setattr(spec_module, "RunSpec", _Toy)
    page = ref.spec_reference()
    rows = {
        "fmax": "| `fmax` | float | `0.05` | eV/Å | > 0 | Force threshold, eV/Å |",
        "steps": "| `steps` | int | `300` |  | ≥ 0; ≤ 1000 | Most steps |",
        "mode": '| `mode` | str | `"fast"` |  | one of `"fast"`, `"slow"` | How |',
        "temperatures": "| `temperatures` | list of float | `[300.0]` | K | "
        "each > 0 | K, one run each |",
        "energy": "| `energy` | float | `0.0` | eV/atom |  | An energy |",
        "slab": "| `vacuum` | float or null | `null` | Å |  | Å between images |",
        "entries": "| `name` | str | required |  |  | Label |",
        "grid": "| `grid` | list of float or section | `[1.0, 2.0]` |  |  | A list, "
        "or keys |\n| `grid.vacuum` | float or null | `null` | Å |  | Å between",
        "tgrid": "| `t_min` | float | `0.0` | K |  | K: lowest |",
    }
    for key, row in rows.items():
        assert row in page, key
    for section in ("entries", "slab", "tgrid"):
        assert f"## `{section}`" in page


#: Keys with no description yet (neither their own nor their Maker's
#: docstring): this list may only shrink.
UNDESCRIBED = frozenset(
    {
        "properties",
        "frameworks.guests",
        "adsorption.n_random",
        "adsorption.fmax",
        "adsorption.max_steps",
        "mof.n_random",
        "mof.open_metal_sites",
        "mof.max_metal_sites",
        "mof.fix_framework",
        "mof.min_length",
        "mof.reference_scheme",
        "mof.fmax",
        "mof.max_steps",
        "mof.optimizer",
        "mof.seed",
        "phonon.imaginary_tol",
        "slab_convergence.miller_indices",
        "slab_convergence.adsorbates",
        "slab_convergence.free_layers",
        "slab_convergence.vacuum",
        "slab_convergence.reference_scheme",
        "slab_convergence.fmax",
        "slab_convergence.max_steps",
        "slab_convergence.optimizer",
        "thermal_conductivity.t_min",
        "thermal_conductivity.t_max",
        "thermal_conductivity.t_step",
        "widom.min_length",
    }
)


def _undescribed(page: str) -> set[str]:
    """``section.key`` of every row of a spec reference with no description."""
    section, out = "", set()
    for line in page.splitlines():
        heading = re.match(r"## `(\w+)`$", line)
        if heading or line == "## Top level":
            section = heading[1] + "." if heading else ""
        elif line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if not cells[-1]:
                out.add(section + cells[0].strip("`"))
    return out


def test_new_spec_keys_have_a_description():
    """A key added to the spec (a Maker field, a settings model's field)
    says what it is: in its ``description`` or its Maker's docstring."""
    new = _undescribed(ref.spec_reference()) - UNDESCRIBED
    assert not new, (
        f"spec keys without a description: {sorted(new)}; give each a "
        "Field(description=...) or a Parameters entry in its Maker's docstring"
    )


def test_description_check_finds_an_undescribed_key(monkeypatch):
    """Control: on the toy spec, the one key without text is reported."""
    monkeypatch.setattr(spec_module, "RunSpec", _Toy)
    assert _undescribed(ref.spec_reference()) == {"quiet"}


# ------------------------------------------------------------ properties


def _intro() -> str:
    readme = _read(ROOT / "README.md")
    start = "<!-- --8<-- [start:intro] -->"
    end = "<!-- --8<-- [end:intro] -->"
    assert start in readme and end in readme, "README.md lost its intro markers"
    return readme.split(start, 1)[1].split(end, 1)[0]


def _unnamed(text: str, names) -> list[str]:
    """The names not written in ``text`` as code (`` `name` ``)."""
    return [name for name in names if f"`{name}`" not in text]


def test_readme_intro_lists_every_property():
    """The README intro (also the docs' home page) names every registered
    property section, as the spec spells it."""
    missing = _unnamed(_intro(), makers())
    assert not missing, f"README.md's intro does not name {missing}"
    assert '--8<-- "README.md:intro"' in _read(DOCS / "index.md")


def test_property_check_finds_an_unlisted_property():
    """Control: a property left out of the intro is reported."""
    intro = _intro().replace("`thermal_conductivity`", "lattice κ")
    assert _unnamed(intro, makers()) == ["thermal_conductivity"]


# ------------------------------------------------------------ names in pages


_PATH = re.compile(
    r"`((?:sevenomni_core|sevenomni_flows|tests|benchmarks|workflows)/[\w/.-]*)`"
)
_DOTTED = re.compile(r"`~?((?:sevenomni_core|sevenomni_flows)(?:\.\w+)+)`")


def _resolves(dotted: str) -> bool:
    """Whether ``a.b.c`` is a module, or attributes of the longest one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def _dead_names(text: str) -> list[str]:
    dead = [p for p in _PATH.findall(text) if not (ROOT / p.rstrip("/")).exists()]
    return dead + [d for d in _DOTTED.findall(text) if not _resolves(d)]


def test_every_module_and_file_a_page_names_exists():
    """Files (`sevenomni_flows/jobs/base.py`) and modules or objects
    (`sevenomni_flows.jobs.base.reuse_key`) named in the docs exist: a
    moved module leaves no stale page behind."""
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    dead = {p.name: d for p in pages if (d := _dead_names(_read(p)))}
    assert not dead, f"the docs name what does not exist: {dead}"


def test_dead_name_check_finds_a_moved_module():
    """Control: a path and a dotted name that do not exist are reported."""
    text = (
        "`sevenomni_flows/jobs/nothing.py`, `sevenomni_flows.jobs.nothing`, "
        "`sevenomni_flows.jobs.base.no_such_function`, "
        "`sevenomni_flows/jobs/base.py`, `sevenomni_flows.jobs.base.reuse_key`"
    )
    assert _dead_names(text) == [
        "sevenomni_flows/jobs/nothing.py",
        "sevenomni_flows.jobs.nothing",
        "sevenomni_flows.jobs.base.no_such_function",
    ]


@pytest.mark.parametrize("page", ["spec-reference.md", "cli.md", "design.md"])
def test_pages_are_in_the_site_navigation(page):
    """The pages this module checks are reachable from the site's menu."""
    assert f": {page}" in _read(ROOT / "mkdocs.yml")
