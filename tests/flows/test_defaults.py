"""Defaults stated once: the spec's and the Makers' agree because they are
the same name, and no module writes the value again."""

import re
from pathlib import Path

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
