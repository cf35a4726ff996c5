"""Training input: bad datasets and configs are named; sampling shares."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from tiny import tiny_parity_potential

from sevenomni_core.model.checkpoint import save_checkpoint
from sevenomni_core.train import DatasetError, TrainConfigError, train
from sevenomni_core.train.sampler import epoch_order

SMALL = {"cutoff": 4.0, "channel": 4, "lmax": 1, "num_convolution_layer": 1}


def _frames(path, symbols=("Cu",), n=3, energy=-3.0, drop=None, nan_at=None):
    """``n`` labelled cells; ``drop`` removes a label, ``nan_at`` poisons frame k."""
    frames = []
    for k in range(n):
        atoms = bulk(symbols[k % len(symbols)], "fcc", a=3.6, cubic=True)
        labels = {
            "energy": energy * len(atoms),
            "forces": np.zeros((len(atoms), 3)),
            "stress": np.zeros(6),
        }
        if k == nan_at:
            labels["forces"] = labels["forces"].copy()
            labels["forces"][1, 2] = np.nan
        if drop and k == n - 1:
            labels.pop(drop)
        atoms.calc = SinglePointCalculator(atoms, **labels)
        frames.append(atoms)
    write(path, frames)
    return path


def _config(tmp_path, data, **over):
    cfg = {
        "output": str(tmp_path / "run"),
        "epochs": 1,
        "model": {"architecture": SMALL},
        "data": data,
    }
    cfg.update(over)
    return cfg


@pytest.mark.parametrize("label", ["energy", "forces"])
def test_missing_label_names_file_and_frame(tmp_path, label):
    path = _frames(tmp_path / "d.extxyz", drop=label)
    with pytest.raises(DatasetError, match=rf"d\.extxyz\[frame 2\]: no {label} label"):
        train(_config(tmp_path, {"a": {"train": [str(path)]}}), progress=None)


def test_nan_label_names_file_and_frame(tmp_path):
    path = _frames(tmp_path / "d.extxyz", nan_at=1)
    with pytest.raises(DatasetError, match=r"\[frame 1\]: forces label is NaN"):
        train(_config(tmp_path, {"a": {"train": [str(path)]}}), progress=None)


def test_missing_file_is_named(tmp_path):
    cfg = _config(tmp_path, {"a": {"train": ["nowhere.extxyz"]}})
    with pytest.raises(DatasetError, match=r"nowhere\.extxyz does not exist"):
        train(cfg, progress=None)


def test_elements_outside_a_pretrained_model(tmp_path):
    """The tiny model covers H, C, O, Cu: Al in frame 1 is named."""
    ckpt = tmp_path / "tiny.pth"
    save_checkpoint(tiny_parity_potential().network, ckpt)
    path = _frames(tmp_path / "d.extxyz", symbols=("Cu", "Al"))
    cfg = _config(tmp_path, {"a": {"train": [str(path)]}}, model={"source": str(ckpt)})
    with pytest.raises(DatasetError, match=r"\[frame 1\]: element\(s\) Al"):
        train(cfg, progress=None)


def test_unknown_tasks_are_named(tmp_path):
    ckpt = tmp_path / "tiny.pth"
    save_checkpoint(tiny_parity_potential().network, ckpt)
    path = _frames(tmp_path / "d.extxyz")
    cfg = _config(tmp_path, {"zz": {"train": [str(path)]}}, model={"source": str(ckpt)})
    with pytest.raises(TrainConfigError, match=r"data\.zz: task 'zz' is not in"):
        train(cfg, progress=None)
    cfg = _config(tmp_path, {"A": {"train": [str(path)]}}, model={"source": str(ckpt)})
    with pytest.raises(TrainConfigError, match="did you mean 'a'"):
        train(cfg, progress=None)
    cfg = _config(
        tmp_path,
        {"a": {"train": [str(path)]}},
        dbs={"files": [{"path": str(path), "task": "b"}]},
    )
    with pytest.raises(TrainConfigError, match=r"dbs\.files: task 'b'"):
        train(cfg, progress=None)
    cfg = _config(
        tmp_path,
        {"a": {"train": [str(path)]}},
        model={"source": str(ckpt), "new_tasks": {"mine": "zz"}},
    )
    with pytest.raises(TrainConfigError, match="source task 'zz'"):
        train(cfg, progress=None)


def test_config_typos_name_the_key(tmp_path):
    path = _frames(tmp_path / "d.extxyz")
    cfg = _config(tmp_path, {"a": {"train": [str(path)]}}, loss={"forces_weight": 1})
    with pytest.raises(TrainConfigError, match=r"loss\.forces_weight"):
        train(cfg, progress=None)


def test_epoch_order_balances_tasks_and_dbs_share():
    """Each task gets an equal share; the DBS takes its fraction of the epoch."""
    order = epoch_order({"big": 90, "small": 10}, 5, 0.1, True, seed=0, epoch=3)
    counts = Counter(src for src, _ in order)
    assert counts["big"] == counts["small"] == 50
    assert counts["dbs"] / len(order) == pytest.approx(0.1, abs=0.01)
    assert set(k for src, k in order if src == "small") == set(range(10))
    assert order == epoch_order({"big": 90, "small": 10}, 5, 0.1, True, 0, 3)
    assert order != epoch_order({"big": 90, "small": 10}, 5, 0.1, True, 0, 4)
    plain = Counter(
        s for s, _ in epoch_order({"big": 90, "small": 10}, 5, None, False, 0, 0)
    )
    assert plain == {"big": 90, "small": 10, "dbs": 5}


def test_ase_database_is_read(tmp_path):
    """Frames in an ASE database train like extxyz frames (labels kept)."""
    from ase.db import connect
    from ase.io import read

    from sevenomni_core.train.dataset import read_frames

    xyz = _frames(tmp_path / "d.extxyz", n=2, energy=-2.5)
    with connect(tmp_path / "d.db") as db:
        for atoms in read(xyz, index=":"):
            db.write(atoms)
    frames = read_frames(tmp_path / "d.db", "a")
    assert [f.energy for f in frames] == [-10.0, -10.0]
    assert frames[0].forces.shape == (4, 3) and frames[0].stress.shape == (6,)


def test_energy_references_by_least_squares(tmp_path):
    """Energies that are sums of per-element values give those values back,
    and a new model's per-task shift rows start at them."""
    import torch

    from sevenomni_core.train import load_train_config
    from sevenomni_core.train.setup import prepare

    per_atom = {"a": {"Cu": -3.5, "Al": -4.0}, "b": {"Cu": -1.0, "Al": -2.0}}
    data = {}
    for task, refs in per_atom.items():
        frames = []
        for k, (cu, al) in enumerate([(4, 0), (0, 4), (2, 2), (3, 1)]):
            atoms = bulk("Cu", "fcc", a=3.8, cubic=True)
            atoms.symbols = ["Cu"] * cu + ["Al"] * al
            atoms.rattle(0.01, seed=k)
            energy = cu * refs["Cu"] + al * refs["Al"]
            atoms.calc = SinglePointCalculator(
                atoms, energy=energy, forces=np.zeros((4, 3))
            )
            frames.append(atoms)
        write(tmp_path / f"{task}.extxyz", frames)
        data[task] = {"train": [str(tmp_path / f"{task}.extxyz")]}
    cfg = load_train_config(_config(tmp_path, data, validation_fraction=0.0))
    model = prepare(cfg).model
    shift = model.rescale_atomic_energy.shift.detach().double()
    al, cu = model.config.type_map[13], model.config.type_map[29]
    for task, refs in per_atom.items():
        row = shift[model.config.task_map[task]]
        torch.testing.assert_close(
            row[[cu, al]],
            torch.tensor([refs["Cu"], refs["Al"]], dtype=torch.float64),
            atol=1e-5,
            rtol=0,
        )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("mse", (0.01 + 0.04) / 2), ("mae", (0.1 + 0.2) / 2), ("huber", None)],
)
def test_loss_kinds(kind, expected):
    """Energy-per-atom residuals of 0.1 and 0.2 eV/atom under each loss kind."""
    import torch

    from sevenomni_core import _keys as K
    from sevenomni_core.train.config import LossSection
    from sevenomni_core.train.loss import loss_terms

    graph = {K.NUM_ATOMS: torch.tensor([2, 4])}
    pred = {K.ENERGY: torch.tensor([0.2, 0.8]), K.FORCES: torch.zeros(6, 3)}
    labels = {K.ENERGY: torch.zeros(2), K.FORCES: torch.zeros(6, 3)}
    cfg = LossSection(kind=kind, huber_delta=0.15, force_weight=0.0)
    value = float(loss_terms(pred, labels, graph, cfg)["total"])
    if expected is None:  # quadratic below delta, linear above
        expected = (0.5 * 0.1**2 + 0.15 * (0.2 - 0.5 * 0.15)) / 2
    assert value == pytest.approx(expected, rel=1e-6)
