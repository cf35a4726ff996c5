"""Checkpoint round trips and old-format patches."""

import numpy as np
import pytest
import torch
from structures import bulk_si, slab_with_adsorbate

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.model import read_checkpoint
from sevenomni_core.model.checkpoint import file_sha256, save_checkpoint
from sevenomni_core.testing import evaluate


@pytest.mark.parametrize(("model", "task"), [("7net-0", None), ("7net-mf-0", "R2SCAN")])
def test_round_trip(model, task, tmp_path, sevenn_calculator):
    """An old-format (0.9.x) checkpoint saved here loads here and in sevenn alike."""
    pot = load_model(model)
    out = tmp_path / "saved.pth"
    sha = save_checkpoint(
        pot.network, out, base_config=read_checkpoint(pot.path)["config"]
    )
    assert sha == file_sha256(out)
    saved = read_checkpoint(out)
    assert set(saved) >= {"config", "model_state_dict", "optimizer_state_dict", "epoch"}
    assert saved["config"]["version"] == "0.11.0"
    for atoms in (bulk_si(), slab_with_adsorbate()):
        e0, f0, s0 = evaluate(SevenOmniCalculator(pot, task=task), atoms)
        e1, f1, s1 = evaluate(
            SevenOmniCalculator(str(out), task=task, device="cpu"), atoms
        )
        e2, f2, s2 = evaluate(sevenn_calculator(out, task), atoms)
        assert e1 == pytest.approx(e0, abs=1e-6)
        np.testing.assert_allclose(f1, f0, atol=1e-5)
        np.testing.assert_allclose(s1, s0, atol=1e-6)
        assert abs(e2 - e0) / len(atoms) < 1e-5
        np.testing.assert_allclose(f2, f0, atol=1e-4)
        np.testing.assert_allclose(s2, s0, atol=1e-5)


def test_old_convolution_order_is_patched():
    """Loading a 0.9 checkpoint reorders the radial outputs (raw weights differ)."""
    pot = load_model("7net-0")
    raw = read_checkpoint(pot.path)["model_state_dict"]
    key = "1_convolution.weight_nn.layer2.weight"
    loaded = pot.network.state_dict()[key]
    assert loaded.shape == raw[key].shape
    assert not torch.equal(loaded, raw[key])
    # same columns, permuted (and some negated for flipped Wigner-3j blocks)
    a = np.sort(np.abs(loaded.numpy()).ravel())
    b = np.sort(np.abs(raw[key].numpy()).ravel())
    np.testing.assert_array_equal(a, b)


def test_sha256_recorded():
    """The loaded model records the sha256 of its file."""
    pot = load_model("7net-l3i5")
    assert pot.sha256 == file_sha256(pot.path)
    assert pot.describe()["sha256"] == pot.sha256
