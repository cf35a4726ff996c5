"""Model registry: finding checkpoints, ``auto``, paths, tasks and the model cache."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
from ase.build import bulk

from sevenomni_core import (
    ModelNotFoundError,
    SevenOmniCalculator,
    available_models,
    load_model,
)
from sevenomni_core.model import CheckpointError
from sevenomni_core.model.registry import MODELS, model_dirs, resolve_checkpoint

SHIPPED = ["7net-0", "7net-0_22May2024", "7net-l3i5", "7net-mf-0"]
OMNI_FILE = "checkpoint_sevennet_omni.pth"


pytestmark = pytest.mark.usefixtures("models_dir", "one_torch_thread")


@pytest.fixture(scope="module")
def wheel_dir() -> Path:
    """The ``pretrained_potentials`` folder of the installed sevenn wheel."""
    folder = model_dirs()[-1]
    assert folder.name == "pretrained_potentials"
    assert folder.is_dir()
    return folder


@pytest.fixture(scope="module")
def mf0_file(wheel_dir) -> Path:
    """The shipped 7net-mf-0 checkpoint: a valid SevenNet checkpoint to copy around."""
    path = wheel_dir / "SevenNet_MF_0" / "checkpoint_sevennet_mf_0.pth"
    assert path.is_file()
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------- finding


def test_available_models_lists_shipped_only(models_dir, wheel_dir):
    """With an empty models folder, exactly the four wheel checkpoints are present."""
    present = available_models()
    assert sorted(present) == sorted(SHIPPED)
    assert "7net-omni" not in present
    for name, path in present.items():
        assert path.is_file(), name
        assert wheel_dir in path.parents, name
    assert model_dirs()[0] == models_dir


def test_missing_checkpoint_names_file_folders_and_release(models_dir, wheel_dir):
    """A missing 7net-omni names its file, every folder searched and the release URL."""
    with pytest.raises(ModelNotFoundError) as err:
        load_model("7net-omni")
    msg = str(err.value)
    assert OMNI_FILE in msg
    assert str(models_dir) in msg
    assert str(wheel_dir) in msg
    assert "v0.12.0.cp" in msg
    assert MODELS["7net-omni"].release in msg
    # both the flat and the sevenn-style nested location of each folder
    assert str(models_dir / "SevenNet_omni" / OMNI_FILE) in msg
    assert str(models_dir / OMNI_FILE) in msg
    assert isinstance(err.value, FileNotFoundError)


def test_auto_without_omni_is_mf0():
    """``auto`` falls back to 7net-mf-0 when no omni checkpoint is present."""
    pot = load_model("auto")
    assert pot.name == "7net-mf-0"
    assert pot.tasks == ["R2SCAN", "PBE"]


@pytest.mark.parametrize("subfolder", ["", "SevenNet_omni"], ids=["flat", "nested"])
def test_auto_with_omni_checkpoint_is_omni(models_dir, mf0_file, subfolder):
    """An omni file in the models folder (flat or sevenn-style) makes ``auto`` omni."""
    target = models_dir / subfolder / OMNI_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mf0_file, target)
    assert available_models()["7net-omni"] == target
    pot = load_model("auto")
    assert pot.name == "7net-omni"
    assert pot.path == target
    assert pot.sha256 == _sha256(target)
    assert pot.tasks == ["R2SCAN", "PBE"]  # it is really the mf-0 weights


def test_xdg_cache_home_is_the_default_models_folder(tmp_path, monkeypatch, mf0_file):
    """Without SEVENOMNI_MODEL_DIR, checkpoints are found under $XDG_CACHE_HOME."""
    monkeypatch.delenv("SEVENOMNI_MODEL_DIR")
    cache = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    folder = cache / "sevenomni" / "models"
    assert model_dirs()[0] == folder
    assert "7net-omni" not in available_models()
    folder.mkdir(parents=True)
    shutil.copyfile(mf0_file, folder / OMNI_FILE)
    assert available_models()["7net-omni"] == folder / OMNI_FILE


@pytest.mark.parametrize("how", ["symlink-omni", "path-to-wheel-file"])
def test_same_file_under_another_name_keeps_that_name(models_dir, mf0_file, how):
    """A file already loaded as 7net-mf-0 still gets the name it is requested by."""
    assert load_model("7net-mf-0").name == "7net-mf-0"
    if how == "symlink-omni":
        os.symlink(mf0_file, models_dir / OMNI_FILE)
        assert load_model("auto").name == "7net-omni"
    else:
        assert load_model(mf0_file).name == mf0_file.stem


# ----------------------------------------------------------------------- paths


def test_checkpoint_path_loads_with_stem_name(tmp_path, mf0_file):
    """A path to a checkpoint loads; its name is the file's stem."""
    path = tmp_path / "my_potential.pth"
    shutil.copyfile(mf0_file, path)
    pot = load_model(path)
    assert pot.name == "my_potential"
    assert pot.path == path
    assert pot.sha256 == _sha256(path)
    assert pot.tasks == ["R2SCAN", "PBE"]
    assert load_model(str(path)) is pot  # str and Path agree (and hit the cache)


def test_missing_path_raises_model_not_found(tmp_path):
    """A path that is neither a file nor a registry name is named in the error."""
    path = tmp_path / "no_such_model.pth"
    with pytest.raises(ModelNotFoundError, match=r"no_such_model\.pth") as err:
        load_model(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("kind", ["garbage", "torch-dict-without-config"])
def test_non_checkpoint_file_raises_checkpoint_error(tmp_path, kind):
    """A file that is not a SevenNet checkpoint raises CheckpointError naming it."""
    path = tmp_path / f"{kind}.pth"
    if kind == "garbage":
        path.write_bytes(b"\x00\x01 this is not a torch file \xff" * 64)
    else:
        torch.save({"model_state_dict": {}}, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path, cache=False)
    assert str(path) in str(err.value)


def test_names_are_case_insensitive():
    """Upper-case names and aliases resolve to the registry's spelling."""
    pot = load_model("7NET-MF-0")
    assert pot.name == "7net-mf-0"
    assert pot is load_model("7net-mf-0")
    assert resolve_checkpoint("SevenNet-0")[0] == "7net-0"
    assert resolve_checkpoint("7Net-0_11Jul2024") == resolve_checkpoint("7net-0")


def test_both_7net0_versions_are_distinct_files():
    """7net-0 and 7net-0_22May2024 share a file name but resolve to different files."""
    new = resolve_checkpoint("7net-0")[1]
    old = resolve_checkpoint("7net-0_22May2024")[1]
    assert new.name == old.name
    assert new != old
    assert new.parent.name == "SevenNet_0__11Jul2024"
    assert old.parent.name == "SevenNet_0__22May2024"


# ----------------------------------------------------------------------- tasks


def test_mf0_tasks_and_default():
    """7net-mf-0 has tasks R2SCAN and PBE, and PBE by default."""
    pot = load_model("7net-mf-0")
    assert pot.tasks == ["R2SCAN", "PBE"]
    assert pot.default_task == "PBE"
    assert pot.resolve_task(None) == ("PBE", 1)
    assert pot.resolve_task("r2scan") == ("R2SCAN", 0)
    assert pot.resolve_task("pbe") == ("PBE", 1)


def test_unknown_task_lists_valid_tasks():
    """An unknown task raises ValueError naming it and both valid tasks."""
    with pytest.raises(ValueError) as err:
        load_model("7net-mf-0").resolve_task("omat24")
    msg = str(err.value)
    assert "omat24" in msg
    assert "R2SCAN" in msg
    assert "PBE" in msg


def test_single_task_model_rejects_a_task():
    """7net-0 has no tasks: None is fine, any named task is a ValueError."""
    pot = load_model("7net-0")
    assert pot.tasks == []
    assert pot.resolve_task(None) == (None, 0)
    with pytest.raises(ValueError, match="single-task"):
        pot.resolve_task("PBE")
    with pytest.raises(ValueError, match="single-task"):
        SevenOmniCalculator("7net-0", task="PBE", device="cpu")


def test_tasks_give_different_energies():
    """R2SCAN and PBE heads of 7net-mf-0 give different energies for bulk Cu."""
    energies = {}
    for task in ("r2scan", "PBE"):
        atoms = bulk("Cu", "fcc", a=3.61)
        atoms.calc = SevenOmniCalculator("7net-mf-0", task=task, device="cpu")
        energies[atoms.calc.task] = atoms.get_potential_energy()
    assert set(energies) == {"R2SCAN", "PBE"}
    assert abs(energies["R2SCAN"] - energies["PBE"]) > 0.1


# ----------------------------------------------------------------------- cache


def test_cache_returns_same_object_unless_disabled():
    """Repeated loads share one Potential; ``cache=False`` gives a private copy."""
    first = load_model("7net-0")
    assert load_model("7net-0") is first
    private = load_model("7net-0", cache=False)
    assert private is not first
    assert private.network is not first.network
    assert private.sha256 == first.sha256
    assert load_model("7net-0") is first  # the private copy did not replace it


def test_float64_request_gives_float64_parameters():
    """A float64 load has float64 parameters and is not the float32 cached model."""
    pot = load_model("7net-0", dtype="float64")
    assert pot.dtype == torch.float64
    params = list(pot.network.parameters())
    assert params
    assert all(p.dtype == torch.float64 for p in params)
    assert pot is not load_model("7net-0")
    assert all(
        p.dtype == torch.float32 for p in load_model("7net-0").network.parameters()
    )
