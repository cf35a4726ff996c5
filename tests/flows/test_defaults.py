"""Defaults stated once: the spec's and the Makers' agree because they are
the same name, and no module writes the value again."""

import re
from pathlib import Path

import pytest

from sevenomni_flows import EosMaker, MofAdsorptionMaker
from sevenomni_flows.properties.adsorption import DEFAULT_GUESTS
from sevenomni_flows.properties.eos import EosDocument
from sevenomni_flows.spec import FrameworkEntry

PACKAGE = Path(__file__).resolve().parents[2] / "sevenomni_flows"
#: a default written as a literal: the guests list, the EOS form
RESTATED = {
    "guests": re.compile(r'[\[(]"CO2", "H2O", "N2"[\])]'),
    "eos": re.compile(r'eos: str(?: \| None)? = (?:Field\()?"birch_murnaghan"'),
}


def _written(sources: list[str]) -> dict[str, int]:
    """How many times each default is written as a literal in ``sources``."""
    return {k: sum(len(p.findall(s)) for s in sources) for k, p in RESTATED.items()}


def test_default_guests_and_eos_are_written_once():
    """The spec's framework guests are the Maker's; the EOS form defaults on
    EosMaker alone (the document says None until a Maker names it).
    Planted: the spec's and the document's old literals are found again."""
    assert FrameworkEntry(file="a.cif").guests == list(DEFAULT_GUESTS)
    assert MofAdsorptionMaker().guests == list(DEFAULT_GUESTS)
    assert EosMaker().eos == "birch_murnaghan"
    assert EosDocument.model_fields["eos"].default is None
    sources = [p.read_text() for p in PACKAGE.rglob("*.py")]
    assert _written(sources) == {"guests": 1, "eos": 1}
    old = [
        '    guests: list[str] = ["CO2", "H2O", "N2"]\n',
        '    eos: str = Field("birch_murnaghan", description="EOS fitted")\n',
    ]
    assert _written([*sources, *old]) == {"guests": 2, "eos": 2}


def _all_defaults_spec(folder: Path, sections: str = "") -> Path:
    """A spec naming every material property, each section at its defaults."""
    from sevenomni_flows.spec import MATERIAL_PROPERTIES

    path = folder / "spec.yaml"
    path.write_text(
        "model: 7net-0\ndevice: cpu\n"
        "structures:\n  - {bulk: Cu, crystal: fcc, a: 3.61}\n"
        f"properties: [{', '.join(MATERIAL_PROPERTIES)}]\n{sections}"
    )
    return path


def test_every_section_builds_its_maker_from_defaults(tmp_path):
    """Each section written as ``{}`` (and left out) gives a Maker: no default
    needs a key the user did not write (the surface slab once did)."""
    from sevenomni_flows.spec import SECTIONS, load_spec

    empty = "".join(f"{name}: {{}}\n" for name in SECTIONS)
    for sections in ("", empty):
        spec, _ = load_spec(_all_defaults_spec(tmp_path, sections))
        for name in SECTIONS:
            maker = spec.maker(name)
            assert type(maker) is SECTIONS[name]._maker, name


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_a_spec_of_defaults_runs_every_material_property(tmp_path, capsys):
    """Cu with every material property at its defaults: each completes."""
    import json

    from sevenomni_flows.cli import main
    from sevenomni_flows.spec import MATERIAL_PROPERTIES

    store = tmp_path / "results"
    assert main(["run", str(_all_defaults_spec(tmp_path)), "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["query", "--store", str(store), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    states = {r["property"]: r["state"] for r in rows}
    assert set(MATERIAL_PROPERTIES) <= set(states), states
    assert {p: s for p, s in states.items() if s != "completed"} == {}
