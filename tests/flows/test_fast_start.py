"""The command line starts fast: ``--help``, ``query`` and ``models`` import no
torch, e3nn or tad-dftd3, and a rerun that computes nothing builds no network.

Each import check runs in a fresh interpreter (this one has torch already) and
reads ``sys.modules`` after the command.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sevenomni_flows.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[2]

#: What a command that computes nothing must not import (seconds each).
HEAVY = ("torch", "e3nn", "tad_dftd3")


def heavy_modules(code: str, root: Path = ROOT) -> list[str]:
    """The :data:`HEAVY` modules imported by ``code`` in a fresh interpreter
    that imports the packages from ``root``."""
    probe = (
        f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])


def cli(*argv: str) -> str:
    """Python running ``sevenomni ARGV`` (``--help`` exits)."""
    return textwrap.dedent(
        f"""
        from sevenomni_flows.cli import main
        try:
            status = main({list(argv)!r})
        except SystemExit as done:
            status = done.code
        assert status == 0, status
        """
    )


SPEC = """
model: 7net-0
device: cpu
structures: [{bulk: Cu, crystal: fcc, a: 3.6}]
properties: [relax]
relax: {fmax: 0.05, max_steps: 100}
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Path, Path]:
    """A spec and a results store holding all its results."""
    folder = tmp_path_factory.mktemp("fast_start")
    spec, store = folder / "spec.yaml", folder / "results"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--store", str(store)]) == 0
    return spec, store


def test_help_imports_no_torch():
    """The parser, ``--help`` and the packages themselves import no torch."""
    code = "import sevenomni_core, sevenomni_flows\n" + cli("--help")
    assert heavy_modules(code) == []


def test_query_export_and_models_import_no_torch(stored, tmp_path):
    """A query (which reads every Maker's document class), an export (which
    writes the stored structures) and ``models`` (which reads each
    checkpoint's tasks) import no torch."""
    _, store = stored
    code = (
        cli("query", "--store", str(store), "--format", "json")
        + cli("export", "{}", "--to", str(tmp_path / "out"), "--store", str(store))
        + cli("models")
    )
    assert heavy_modules(code) == []
    assert list((tmp_path / "out").iterdir())  # the export wrote the relaxed Cu


def test_the_check_sees_a_planted_torch_import(stored, tmp_path):
    """Planted: a copy of the packages whose EOS Maker module imports torch
    at the top fails the query check."""
    _, store = stored
    for package in ("sevenomni_core", "sevenomni_flows"):
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    eos = tmp_path / "sevenomni_flows" / "properties" / "eos.py"
    eos.write_text(eos.read_text() + "\nimport torch  # planted\n")
    code = cli("query", "--store", str(store), "--format", "json")
    assert heavy_modules(code, tmp_path) == ["torch"]


def test_a_rerun_that_computes_nothing_builds_no_network(stored, monkeypatch, capsys):
    """With every result stored, ``run`` plans from the checkpoint's config
    and hash alone; planted: a planner that builds the network is caught."""
    import sevenomni_core.model.checkpoint as checkpoint
    import sevenomni_core.model.potential as potential
    from sevenomni_flows.jobs import ModelSettings

    spec, store = stored

    def no_build(*args, **kwargs):
        raise RuntimeError("the network was built")

    monkeypatch.setattr(potential, "_CACHE", {})
    monkeypatch.setattr(potential, "_NETWORKS", {})
    monkeypatch.setattr(checkpoint, "build_model", no_build)
    assert main(["run", str(spec), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "1 results reused, 0 to compute" in out
    assert "model 7net-0" in out  # still named, with its sha256

    eager = ModelSettings.potential
    monkeypatch.setattr(
        ModelSettings, "potential", lambda self, build=True: eager(self)
    )
    with pytest.raises(RuntimeError, match="the network was built"):
        main(["run", str(spec), "--store", str(store)])


def test_a_rerun_imports_neither_e3nn_nor_d3(stored):
    """In a fresh process, a rerun that computes nothing needs torch (devices,
    the checkpoint's file) but not e3nn, which only building a network needs."""
    spec, store = stored
    code = cli("run", str(spec), "--store", str(store))
    assert heavy_modules(code) == ["torch"]


def test_a_deferred_network_is_built_once_on_use(monkeypatch):
    """``build=False`` reads the config (tasks, cutoff) without building; the
    first use builds the network that a later ``load_model`` shares."""
    import sevenomni_core.model.potential as potential
    from sevenomni_core.model.network import SevenNet

    monkeypatch.setattr(potential, "_CACHE", {})
    monkeypatch.setattr(potential, "_NETWORKS", {})
    deferred = potential.load_model("7net-mf-0", device="cpu", build=False)
    assert not deferred.network.built
    assert deferred.tasks == ["R2SCAN", "PBE"]
    assert deferred.resolve_task(None) == ("PBE", 1)
    assert deferred.cutoff == 5.0
    assert not deferred.network.built
    built = potential.load_model("7net-mf-0", device="cpu")
    assert isinstance(built.network, SevenNet)
    assert deferred.network.built and deferred.network.get() is built.network
    assert built.sha256 == deferred.sha256


def test_the_light_config_reader_agrees_with_torch(tmp_path):
    """Each shipped checkpoint's config, read without torch, gives the model
    config that torch's reader gives; a torch file without a config is
    refused by name."""
    import torch

    from sevenomni_core.model.checkpoint import checkpoint_config, read_checkpoint
    from sevenomni_core.model.config import ModelConfig
    from sevenomni_core.model.header import CheckpointError, read_config
    from sevenomni_core.model.registry import available_models

    present = available_models()
    assert present
    for name, path in present.items():
        light = ModelConfig.from_sevenn(read_config(path))
        assert light == checkpoint_config(read_checkpoint(path)), name
    other = tmp_path / "other.pth"
    torch.save({"weights": torch.ones(3)}, other)
    with pytest.raises(CheckpointError, match=r"other\.pth is not a SevenNet"):
        read_config(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_config(tmp_path / "missing.pth")


def test_option_names_are_the_engines():
    """The torch-free option names are the ones the engines use."""
    from sevenomni_core.batch import optimizers
    from sevenomni_core.options import OPTIMIZERS, default

    assert tuple(optimizers.OPTIMIZERS) == OPTIMIZERS
    with pytest.raises(ValueError, match="unknown engine 'sgd'"):
        default("sgd", "fmax")
    with pytest.raises(ValueError, match="has no default for 'structures'"):
        default("relax", "structures")
    with pytest.raises(ValueError, match="not a literal: MIN_DISTANCE"):
        default("relax", "min_distance")
