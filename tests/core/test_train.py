"""Training: loss goes down, selective L2, resume, new tasks, sevenn round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from structures import bulk_si, slab_with_adsorbate
from train_data import labelled_bulk

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.cli.main import main as cli
from sevenomni_core.model.checkpoint import build_model, read_checkpoint
from sevenomni_core.train import (
    append_tasks,
    interaction_task_weights,
    load_train_config,
    selective_l2,
    task_masks,
    train,
)
from sevenomni_core.train.loop import _evaluate
from sevenomni_core.train.setup import prepare

SMALL = {
    "cutoff": 4.0,
    "channel": 8,
    "lmax": 1,
    "num_convolution_layer": 2,
    "weight_nn_hidden_neurons": [16],
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Cu/Al cells labelled by 7net-mf-0's PBE and R2SCAN tasks."""
    folder = tmp_path_factory.mktemp("data")
    return {
        "pbe": labelled_bulk(folder / "pbe.extxyz", task="PBE", n=16, seed=0),
        "r2scan": labelled_bulk(folder / "r2scan.extxyz", task="R2SCAN", n=12, seed=1),
    }


def _config(tmp_path, datasets, **over) -> dict:
    cfg = {
        "seed": 3,
        "output": str(tmp_path / "run"),
        "epochs": 4,
        "batch_size": 4,
        "model": {"architecture": SMALL},
        "data": {t: {"train": [str(p)]} for t, p in datasets.items()},
        "regularization": {"selective_l2": 1e-3},
        "optimizer": {"lr": 0.01, "schedule": "cosine", "ema_decay": 0.5},
    }
    for key, value in over.items():
        cfg[key] = value
    return cfg


def test_cli_training_lowers_the_loss(tmp_path, datasets, capsys):
    """`sevenomni train` on a tiny config lowers the training-set loss by 40%."""
    path = tmp_path / "train.yaml"
    raw = _config(tmp_path, datasets, epochs=12, batch_size=2)
    path.write_text(yaml.safe_dump(raw))
    cfg = load_train_config(path)
    initial = prepare(cfg)
    cpu = torch.device("cpu")
    before, _ = _evaluate(initial.model, initial.train, cfg, cpu)
    assert cli(["train", str(path)]) == 0
    out = capsys.readouterr().out
    assert "epoch  12/12" in out and "pbe: E" in out and "r2scan: E" in out
    trained = build_model(read_checkpoint(tmp_path / "run" / "last.pth"))
    after, _ = _evaluate(trained, initial.train, cfg, cpu)
    assert after < 0.6 * before
    _, metrics = _evaluate(trained, initial.validation, cfg, cpu)
    assert set(metrics) == {"pbe", "r2scan"}
    assert (tmp_path / "run" / "log.csv").read_text().count("\n") == 13


def test_selective_l2_touches_only_interaction_task_weights():
    """The penalty's gradient is non-zero exactly on the task rows of interactions."""
    net = load_model("7net-mf-0", cache=False).network
    for p in net.parameters():
        p.requires_grad_(True)
    selected = interaction_task_weights(net)
    assert {n.split(".")[0] for n, _, _ in selected} == {
        f"{t}_self_interaction_{k}" for t in range(net.num_layers) for k in (1, 2)
    }
    reg = selective_l2(net)
    expected = sum(float((p.detach()[rows] ** 2).sum()) for _, p, rows in selected)
    assert float(reg.detach()) == pytest.approx(expected, rel=1e-6)
    assert expected > 0
    reg.backward()
    want = {}
    for name, p in net.named_parameters():
        mask = torch.zeros_like(p, dtype=torch.bool)
        for n, _, rows in selected:
            if n == name:
                mask[rows] = True
        want[name] = mask
    touched = 0
    for name, p in net.named_parameters():
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        assert torch.all(grad[~want[name]] == 0), name
        assert torch.all(grad[want[name]] == 2 * p.detach()[want[name]]), name
        touched += int(want[name].sum())
    # the readout's task rows are task-specific but not penalised
    masks = task_masks(net)
    readout = masks["reduce_input_to_hidden.linear.weight"]
    assert readout.any() and not want["reduce_input_to_hidden.linear.weight"].any()
    assert touched == sum(int(m.sum()) for n, m in masks.items() if "interaction" in n)


def test_task_rows_act_on_their_task_only():
    """Changing one task's selected rows changes that task's energies only."""
    pot = load_model("7net-mf-0", cache=False)
    atoms = bulk_si()
    calc = {t: SevenOmniCalculator(pot, task=t) for t in pot.tasks}
    before = {t: c.get_potential_energy(atoms.copy()) for t, c in calc.items()}
    k = pot.network.config.task_map["PBE"]
    with torch.no_grad():
        for _, param, rows in interaction_task_weights(pot.network):
            block = param[rows].view(pot.network.config.num_tasks, -1)
            block[k] += 0.05
            param[rows] = block.reshape(-1)
    for c in calc.values():
        c.reset()
    after = {t: c.get_potential_energy(atoms.copy()) for t, c in calc.items()}
    assert abs(after["PBE"] - before["PBE"]) > 1e-3
    assert after["R2SCAN"] == pytest.approx(before["R2SCAN"], abs=1e-6)


def test_resume_equals_uninterrupted(tmp_path, datasets):
    """Stopping after epoch 2 and rerunning gives the uninterrupted weights."""
    whole = train(
        _config(tmp_path / "a", datasets, dbs={"files": [], "fraction": None}),
        progress=None,
    )
    cfg = _config(tmp_path / "b", datasets, dbs={"files": [], "fraction": None})
    part = train(cfg, stop_after=2, progress=None)
    assert len(part.history) == 2
    lines = []
    resumed = train(cfg, progress=lines.append)
    assert lines[0].startswith("resuming") and len(resumed.history) == 4
    a = read_checkpoint(whole.last)
    b = read_checkpoint(resumed.last)
    for key, value in a["model_state_dict"].items():
        torch.testing.assert_close(b["model_state_dict"][key], value, rtol=0, atol=0)
    assert [h["valid_loss"] for h in resumed.history] == [
        h["valid_loss"] for h in whole.history
    ]


def test_rerun_with_another_config_refuses(tmp_path, datasets):
    """An output folder of another run is not silently overwritten."""
    train(_config(tmp_path, datasets, epochs=1), progress=None)
    with pytest.raises(ValueError, match="another config"):
        train(_config(tmp_path, datasets, epochs=1, seed=9), progress=None)


@pytest.mark.parametrize(
    ("source", "new", "from_task"),
    [("7net-mf-0", "mine", "PBE"), ("7net-0", "mine", "base")],
)
def test_appended_task_starts_equal_to_its_source(source, new, from_task):
    """A new task's energies, forces and stress equal its source task's."""
    pot = load_model(source, dtype="float64", cache=False)
    net = append_tasks(pot.network, {new: from_task})
    assert net.tasks[-1] == new
    original = SevenOmniCalculator(pot, task=None if from_task == "base" else from_task)
    for atoms in (bulk_si(), slab_with_adsorbate()):
        ref = atoms.copy()
        ref.calc = original
        e0, f0, s0 = ref.get_potential_energy(), ref.get_forces(), ref.get_stress()
        for task in (new, from_task):
            probe = atoms.copy()
            probe.calc = SevenOmniCalculator(
                _as_potential(pot, net), task=task, device="cpu"
            )
            assert probe.get_potential_energy() == pytest.approx(e0, abs=1e-8)
            np.testing.assert_allclose(probe.get_forces(), f0, atol=1e-9)
            np.testing.assert_allclose(probe.get_stress(), s0, atol=1e-10)


def _as_potential(pot, net):
    from dataclasses import replace

    return replace(pot, network=net.eval(), default_task=net.tasks[-1])


def test_fine_tuned_task_round_trips_through_sevenn(
    tmp_path, datasets, sevenn_calculator
):
    """Fine-tune a new task of 7net-mf-0 (shared frozen); sevenn reads the result."""
    cfg = _config(
        tmp_path,
        {"mine": datasets["r2scan"]},
        epochs=2,
        model={
            "source": "7net-mf-0",
            "new_tasks": {"mine": "R2SCAN"},
            "freeze_shared": True,
        },
        regularization={"selective_l2": 0.0},
        optimizer={"lr": 0.01},
    )
    result = train(cfg, progress=None)
    tuned = SevenOmniCalculator(str(result.last), task="mine", device="cpu")
    base = SevenOmniCalculator("7net-mf-0", task="R2SCAN")
    for atoms in (bulk_si(), slab_with_adsorbate()):
        ours = atoms.copy()
        ours.calc = tuned
        theirs = atoms.copy()
        theirs.calc = sevenn_calculator(result.last, "mine")
        e = ours.get_potential_energy()
        assert abs(theirs.get_potential_energy() - e) / len(atoms) < 1e-5
        np.testing.assert_allclose(theirs.get_forces(), ours.get_forces(), atol=1e-4)
        # the other tasks are untouched by a frozen fine-tune
        for task in ("R2SCAN", "PBE"):
            a = atoms.copy()
            a.calc = SevenOmniCalculator(str(result.last), task=task, device="cpu")
            b = atoms.copy()
            b.calc = SevenOmniCalculator("7net-mf-0", task=task)
            assert a.get_potential_energy() == pytest.approx(
                b.get_potential_energy(), abs=1e-4
            )
        # ... while the new task moved away from its source
        ref = atoms.copy()
        ref.calc = base
        assert abs(e - ref.get_potential_energy()) > 1e-4


TRAINING = Path(__file__).resolve().parents[2] / "workflows" / "training"


@pytest.mark.parametrize("name", ["multitask.yaml", "finetune.yaml"])
def test_example_configs_run(name, tmp_path):
    """The example configs validate, name existing files and train an epoch."""
    cfg = load_train_config(TRAINING / name)
    cfg.output = str(tmp_path / "run")
    result = train(cfg, stop_after=1, progress=None)
    assert len(result.history) == 1
    assert set(result.history[0]["metrics"]) == set(cfg.data)
    assert np.isfinite(result.history[0]["train_loss"])


def test_labels_of_the_model_itself_give_zero_loss(tmp_path):
    """Frames labelled by 7net-0 and read back (extxyz) cost 7net-0 nothing.

    Checks the label reading end to end: energy, forces, stress sign and
    Voigt order, and the units of every loss term.
    """
    path = labelled_bulk(tmp_path / "self.extxyz", model="7net-0", task=None, n=6)
    cfg = load_train_config(
        {
            "output": str(tmp_path / "run"),
            "model": {"source": "7net-0"},
            "data": {"base": {"train": [str(path)]}},
            "loss": {"energy_weight": 1.0, "force_weight": 1.0, "stress_weight": 1.0},
            "validation_fraction": 0.0,
        }
    )
    setup = prepare(cfg)
    loss, metrics = _evaluate(setup.model, setup.train, cfg, torch.device("cpu"))
    assert loss < 1e-9
    m = metrics["base"]
    assert m["energy_mae"] < 1e-3 and m["forces_mae"] < 1e-3  # meV/atom, meV/Å
    assert m["stress_mae"] < 1e-5  # GPa


def test_new_model_tasks_start_on_one_surface(tmp_path, datasets):
    """A new model's tasks differ at first only by their elemental shifts."""
    cfg = load_train_config(_config(tmp_path, datasets))
    setup = prepare(cfg)
    net = setup.model.double()
    shift = net.rescale_atomic_energy.shift.detach()
    sample = setup.train["pbe"][3]
    species = sample.graph["species"]
    energies = {}
    for task, k in net.config.task_map.items():
        graph = dict(sample.graph, task=torch.tensor([k]))
        energies[task] = float(net(graph, compute_forces=False)["energy"][0])
    a, b = net.config.task_map["pbe"], net.config.task_map["r2scan"]
    expected = float((shift[a, species] - shift[b, species]).sum())
    assert energies["pbe"] - energies["r2scan"] == pytest.approx(expected, abs=1e-9)
    assert abs(expected) > 1.0  # the two protocols' references do differ


@pytest.mark.gpu
def test_cuda_training_matches_cpu(tmp_path, datasets):
    """An epoch on CUDA (float64) ends with the CPU run's weights."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    runs = {}
    for device in ("cpu", "cuda"):
        cfg = _config(tmp_path / device, datasets, epochs=1, device=device)
        cfg["dtype"] = "float64"
        runs[device] = read_checkpoint(train(cfg, progress=None).last)
    for key, value in runs["cpu"]["model_state_dict"].items():
        torch.testing.assert_close(
            runs["cuda"]["model_state_dict"][key], value, rtol=1e-6, atol=1e-8
        )


def test_new_task_references_are_fitted_to_its_data(tmp_path, datasets):
    """Labels offset per element (another code's zero of energy) are absorbed
    by the new task's shifts before training; forces stay the source's."""
    from ase.io import read, write

    offset = {29: 1.5, 13: -0.7}  # eV per Cu, Al atom
    frames = read(datasets["pbe"], index=":")
    for atoms in frames:
        calc = atoms.calc
        calc.results["energy"] += sum(offset[int(z)] for z in atoms.numbers)
        calc.results.pop("free_energy", None)
    path = tmp_path / "shifted.extxyz"
    write(path, frames)
    cfg = load_train_config(
        {
            "output": str(tmp_path / "run"),
            "model": {"source": "7net-mf-0", "new_tasks": {"mine": "PBE"}},
            "data": {"mine": {"train": [str(path)]}},
            "validation_fraction": 0.0,
        }
    )
    setup = prepare(cfg)
    _, metrics = _evaluate(setup.model, setup.train, cfg, torch.device("cpu"))
    assert metrics["mine"]["energy_mae"] < 0.5  # meV/atom, from 1000s before
    assert metrics["mine"]["forces_mae"] < 0.01  # labels are the source's forces
    cfg.model.fit_references = False
    _, metrics = _evaluate(prepare(cfg).model, setup.train, cfg, torch.device("cpu"))
    assert metrics["mine"]["energy_mae"] > 500
