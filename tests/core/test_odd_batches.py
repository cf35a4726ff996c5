"""Odd structures (isolated atoms, molecules in boxes, 1-atom cells) batched with
crystals: each gets what it gets alone, and one that raises fails alone."""

import numpy as np
import pytest

from sevenomni_core import _keys as K
from sevenomni_core import load_model
from sevenomni_core.batch import md, predict, relax
from sevenomni_core.testing import check_batch_consistency, odd_structures

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pot():
    return load_model("7net-0", device="cpu", dtype="float64")


def test_zero_neighbour_atoms_batch_with_crystals(pot):
    """Atoms with no neighbour share a pass with crystals (they used to raise
    'cannot reshape tensor of 0 elements'); each result equals the alone one."""
    structures = list(odd_structures().values())
    worst = check_batch_consistency(lambda s: predict(s, model=pot), structures)
    assert worst["energy"] < 1e-9
    assert worst["forces"] < 1e-9
    assert worst["stress"] < 1e-9
    assert worst["modified"] == 0


def test_isolated_atoms_have_the_isolated_atom_energy(pot):
    """A dilute cell is a sum of isolated atoms: zero forces and stress, and
    the energy of one atom alone in a box times the atom count."""
    odd = odd_structures()
    dilute = odd["dilute"]
    lone = dilute[:1].copy()
    lone.cell = [20.0, 20.0, 20.0]
    out = predict([dilute, odd["crystal_cu"], lone], model=pot)
    assert out[0].energy == pytest.approx(len(dilute) * out[2].energy, abs=1e-9)
    assert np.abs(out[0].forces).max() < 1e-12
    assert np.abs(out[0].stress).max() < 1e-12


def test_relax_and_md_batch_odd_structures(pot):
    """Relaxation and MD of the odd set in one call equal one call each."""
    structures = list(odd_structures().values())
    worst = check_batch_consistency(
        lambda s: relax(s, model=pot, fmax=0.05, max_steps=30), structures
    )
    assert worst["energy"] < 1e-8 and worst["forces"] < 1e-7
    seeds = {id(a): i for i, a in enumerate(structures)}  # one stream each
    worst = check_batch_consistency(
        lambda s: md(s, model=pot, steps=4, interval=2, seed=[seeds[id(a)] for a in s]),
        structures,
        fields=("potential_energy", "temperature", "positions"),
    )
    assert worst["positions"] < 1e-9
    assert worst["potential_energy"] < 1e-8


def _fail_on(pot, monkeypatch, n_atoms):
    """Make the model raise for any batch holding a structure of ``n_atoms``."""
    evaluate = pot.evaluate

    def flaky(batch, **kwargs):
        if (batch[K.NUM_ATOMS] == n_atoms).any():
            raise RuntimeError("injected fault")
        return evaluate(batch, **kwargs)

    monkeypatch.setattr(pot, "evaluate", flaky)


def test_a_structure_that_raises_fails_alone(pot, monkeypatch):
    """An exception inside a batched pass is traced to its structure by
    bisection: only it fails, with the real error; the others complete with
    their alone values, in predict, relax and MD."""
    structures = list(odd_structures().values())
    alone = [predict([s], model=pot)[0] for s in structures]
    alone_relax = [relax([s], model=pot, max_steps=30)[0] for s in structures]
    water = next(i for i, s in enumerate(structures) if len(s) == 3)
    _fail_on(pot, monkeypatch, 3)
    out = predict(structures, model=pot)
    relaxed = relax(structures, model=pot, max_steps=30)
    runs = md(structures, model=pot, steps=2, interval=1)
    for i, (p, r, m) in enumerate(zip(out, relaxed, runs, strict=True)):
        if i == water:
            assert p.error == "RuntimeError: injected fault"
            assert "injected fault" in r.error
            assert "injected fault" in m.error
            continue
        assert p.error is None and r.error is None and m.error is None
        assert p.energy == pytest.approx(alone[i].energy, abs=1e-9)
        assert r.energy == pytest.approx(alone_relax[i].energy, abs=1e-8)


def test_odd_structures_at_mixed_tasks_batch_alike():
    """Odd structures and crystals at two tasks of one model in one pass
    (predict and relax, as a two-fidelity screening runs them): each equals
    its own single-structure result at its task; a structure asking for a
    task the model lacks fails alone."""
    mf = load_model("7net-mf-0", device="cpu", dtype="float64")
    structures = list(odd_structures().values())
    for i, atoms in enumerate(structures):
        atoms.info["task"] = ("PBE", "R2SCAN")[i % 2]

    def tasks(batch):
        return [a.info["task"] for a in batch]

    worst = check_batch_consistency(
        lambda s: predict(s, model=mf, task=tasks(s)), structures
    )
    assert max(worst[k] for k in ("energy", "forces", "stress")) < 1e-9
    worst = check_batch_consistency(
        lambda s: relax(s, model=mf, task=tasks(s), fmax=0.05, max_steps=20),
        structures,
        fields=("energy", "forces"),
    )
    assert max(worst.values()) < 1e-8
    # the same structure at the two tasks differs: the task is really used
    both = predict([structures[0], structures[0]], model=mf, task=["PBE", "R2SCAN"])
    assert abs(both[0].energy - both[1].energy) > 0.1
    bad = predict(structures[:3], model=mf, task=["PBE", "nonsense", "R2SCAN"])
    assert bad[1].error is not None and "nonsense" in bad[1].error
    assert bad[0].error is None and bad[2].error is None
