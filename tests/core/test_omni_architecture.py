"""Parity on the SevenNet-Omni architecture (13 tasks, lmax 3, O(3), nequip
self-connection, XPLOR 5.5-6 Å) with random weights, built by sevenn."""

import numpy as np
import pytest
from oracle.omni_arch import OMNI_TASKS, make_omni_arch_checkpoint
from structures import slab_with_adsorbate, triclinic

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.model.checkpoint import save_checkpoint
from sevenomni_core.testing import evaluate


@pytest.fixture(scope="module")
def omni_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("omni") / "checkpoint_omni_arch.pth"
    make_omni_arch_checkpoint(path, seed=7)
    return path


def test_every_task_matches_sevenn(omni_checkpoint, sevenn_calculator):
    """All 13 task heads match sevenn; energies per task differ."""
    pot = load_model(omni_checkpoint)
    assert pot.tasks == OMNI_TASKS
    assert pot.default_task == "mpa"
    structures = [triclinic(), slab_with_adsorbate()]
    energies = []
    for task in OMNI_TASKS:
        ours = SevenOmniCalculator(pot, task=task)
        ref = sevenn_calculator(omni_checkpoint, task)
        for atoms in structures:
            e, f, s = evaluate(ours, atoms)
            e_ref, f_ref, s_ref = evaluate(ref, atoms)
            assert abs(e - e_ref) / len(atoms) < 1e-5
            # random weights give small forces (~1e-3 eV/Å): compare tightly
            np.testing.assert_allclose(f, f_ref, atol=1e-5, rtol=0)
            assert np.abs(f_ref).max() > 1e-4
            np.testing.assert_allclose(s, s_ref, atol=1e-6, rtol=0)
        energies.append(e)
    assert np.ptp(energies) > 1e-2


def test_round_trip_through_sevenn(omni_checkpoint, tmp_path, sevenn_calculator):
    """Saved here, the Omni-architecture checkpoint loads here and in sevenn alike."""
    pot = load_model(omni_checkpoint, cache=False)
    out = tmp_path / "resaved.pth"
    save_checkpoint(pot.network, out)
    atoms = triclinic()
    for task in ("mpa", "odac23"):
        e0, f0, s0 = evaluate(SevenOmniCalculator(pot, task=task), atoms)
        e1, _f1, _s1 = evaluate(SevenOmniCalculator(str(out), task=task), atoms)
        e2, f2, s2 = evaluate(sevenn_calculator(out, task), atoms)
        assert e1 == pytest.approx(e0, abs=1e-6)
        assert e2 == pytest.approx(e0, abs=len(atoms) * 1e-5)
        np.testing.assert_allclose(f2, f0, atol=1e-5)
        np.testing.assert_allclose(s2, s0, atol=1e-6)
