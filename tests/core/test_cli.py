"""The ``sevenomni`` command line: ``models`` and ``eval``."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from ase import Atoms
from ase.io import read, write

from sevenomni_core import SevenOmniCalculator
from sevenomni_core.cli.main import main

STRUCTURES = Path(__file__).resolve().parents[2] / "workflows" / "structures"
GAAS = STRUCTURES / "GaAs.cif"
SHIPPED = ["7net-0", "7net-0_22May2024", "7net-l3i5", "7net-mf-0"]


pytestmark = pytest.mark.usefixtures("models_dir", "one_torch_thread")


@pytest.fixture(scope="module")
def gaas_energy() -> float:
    """7net-0 energy of the GaAs example, straight from the calculator."""
    atoms = read(GAAS)
    atoms.calc = SevenOmniCalculator("7net-0", device="cpu")
    return atoms.get_potential_energy()


def _eval_json(capsys, *args: str) -> tuple[int, dict, str]:
    status = main(
        ["eval", *args, "--model", "7net-0", "--device", "cpu", "--format", "json"]
    )
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def test_models_table(capsys, models_dir):
    """``models`` marks 7net-mf-0 present and 7net-omni absent, and names ``auto``."""
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()[2:]
        if line.startswith("7net")
    }
    assert rows["7net-mf-0"][0] == "yes"
    assert rows["7net-omni"][0] == "no"
    assert "R2SCAN, PBE" in " ".join(rows["7net-mf-0"])
    assert str(models_dir) in out.splitlines()[0]
    assert "'auto' resolves to: 7net-mf-0" in out


def test_models_json(capsys):
    """``models --format json`` parses, with ``auto`` and a present flag per model."""
    assert main(["models", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["auto"] == "7net-mf-0"
    rows = {row["model"]: row for row in doc["models"]}
    present = sorted(name for name, row in rows.items() if row["present"])
    assert present == sorted(SHIPPED)
    assert rows["7net-omni"]["present"] is False
    assert rows["7net-omni"]["path"] is None
    assert rows["7net-mf-0"]["tasks"] == "R2SCAN, PBE"
    assert rows["7net-mf-0"]["default_task"] == "PBE"
    assert rows["7net-0"]["tasks"] == "(single task)"


def test_eval_matches_calculator(capsys, gaas_energy):
    """``eval`` reports the same energy as the ASE calculator on the same file."""
    status, doc, err = _eval_json(capsys, str(GAAS))
    assert status == 0, err
    assert doc["model"]["model"] == "7net-0"
    [result] = doc["results"]
    assert result["structure"] == str(GAAS)
    assert result["formula"] == "AsGa"
    assert result["energy_eV"] == pytest.approx(gaas_energy, abs=1e-6)
    assert result["energy_per_atom_eV"] == pytest.approx(gaas_energy / 2, abs=1e-6)
    assert len(result["forces_eV_per_A"]) == 2
    assert len(result["stress_eV_per_A3"]) == 6


@pytest.mark.parametrize("kind", ["missing-file", "unknown-element"])
def test_eval_bad_item_fails_alone(capsys, tmp_path, gaas_energy, kind):
    """A bad input fails alone (named error, status 1); the good one still runs."""
    bad = tmp_path / f"{kind}.extxyz"
    if kind == "unknown-element":
        write(bad, Atoms("GaOg", positions=[[0, 0, 0], [0, 0, 2.5]]))
    status, doc, err = _eval_json(capsys, str(bad), str(GAAS))
    assert status == 1
    assert str(bad) in err
    if kind == "unknown-element":
        assert "Og" in err
    [result] = doc["results"]
    assert result["structure"] == str(GAAS)
    assert result["energy_eV"] == pytest.approx(gaas_energy, abs=1e-6)


def test_eval_missing_model_is_an_error(capsys):
    """An absent model is a clean error (status 2) naming its checkpoint file."""
    status = main(["eval", str(GAAS), "--model", "7net-omni", "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 2
    assert "checkpoint_sevennet_omni.pth" in captured.err
    assert captured.out == ""


def test_module_entry_runs():
    """``python -m sevenomni_core.cli.main models`` exits 0 and lists the models."""
    proc = subprocess.run(
        [sys.executable, "-m", "sevenomni_core.cli.main", "models"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "7net-mf-0" in proc.stdout
    assert "'auto' resolves to: 7net-mf-0" in proc.stdout


def test_console_script_is_registered():
    """The installed ``sevenomni`` console script points at the CLI's main."""
    [script] = [
        ep for ep in entry_points(group="console_scripts") if ep.name == "sevenomni"
    ]
    assert script.value == "sevenomni_flows.cli:main"
    from sevenomni_flows.cli import main as full_main

    assert script.load() is full_main
