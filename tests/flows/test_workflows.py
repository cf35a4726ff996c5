"""The example specs in workflows/ stay valid and runnable."""

from pathlib import Path

import pytest
import yaml

from sevenomni_flows.cli import main
from sevenomni_flows.run.frameworks import read_frameworks
from sevenomni_flows.spec import load_spec, read_structures

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
SPECS = sorted(WORKFLOWS.glob("*.yaml"))


@pytest.mark.filterwarnings("error::FutureWarning")  # no old spellings shipped
@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_example_specs_validate_and_their_files_exist(path):
    """Each example validates and every structure and framework file it names reads."""
    spec, base = load_spec(path)
    for label, item, _ in read_structures(spec.structures, base):
        assert not isinstance(item, str), f"{label}: {item}"
    for framework in read_frameworks(spec.frameworks, base):
        assert framework.error is None and Path(framework.path).is_file()


def test_quickstart_smoke(tmp_path, capsys):
    """The quickstart, cut to two materials and loose settings, runs end to end."""
    data = yaml.safe_load((WORKFLOWS / "quickstart.yaml").read_text())
    data["structures"] = data["structures"][:2]
    data["model"] = "7net-0"
    data["relax"]["fmax"] = 0.05
    data.pop("store")
    spec = tmp_path / "quick.yaml"
    spec.write_text(yaml.safe_dump(data))
    status = main(["run", str(spec), "--store", str(tmp_path / "results")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "2 materials x 4 properties" in out
    assert "8 completed, 0 failed, 0 skipped, 0 missing" in out
