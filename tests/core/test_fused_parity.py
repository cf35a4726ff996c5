"""The receiver-slot kernels against e3nn's own forward, on every shipped
checkpoint, task head and precision: odd-structure batches with one task per
structure, and one bad structure that fails alone."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from sevenomni_core import load_model
from sevenomni_core.batch import predict
from sevenomni_core.nn import convolution, tensor_product
from sevenomni_core.testing import odd_structures

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: energy per atom (eV/atom), forces (eV/Å) and stress (eV/Å^3) tolerances
TOLERANCE = {"float32": 1e-5, "float64": 1e-9}


def _reference(model, dtype):
    """``model`` with every tensor product through e3nn (the oracle).

    It is built with ``dtype`` as torch's default, so that e3nn's coupling
    constants are made in that precision (e3nn built in float32 and moved to
    float64 keeps float32-rounded Wigner 3j symbols: 4e-8 off).
    """
    before = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        ref = load_model(model, device="cpu", dtype=dtype, cache=False)
    finally:
        torch.set_default_dtype(before)

    def evaluate(graph, **kwargs):
        return ref.network(graph, reference=True, **kwargs)

    ref.evaluate = evaluate
    return ref


def _batch():
    """Odd structures, a 32-atom crystal (many receiver buckets) and a
    structure with an element no shipped model covers."""
    structures = list(odd_structures().values())
    big = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    big.rattle(0.1, seed=3)
    big.symbols[:5] = "Au"
    bad = bulk("Og", "fcc", a=5.0)
    return [*structures, big, bad]


def _worst(fast, ref, structures):
    """Largest |fast - ref| of energy per atom, forces and stress."""
    worst = dict.fromkeys(("energy", "forces", "stress"), 0.0)
    for f, r, atoms in zip(fast, ref, structures, strict=True):
        worst["energy"] = max(worst["energy"], abs(f.energy - r.energy) / len(atoms))
        worst["forces"] = max(worst["forces"], float(np.abs(f.forces - r.forces).max()))
        if r.stress is not None:
            diff = np.abs(np.asarray(f.stress) - np.asarray(r.stress)).max()
            worst["stress"] = max(worst["stress"], float(diff))
    return worst


# the default run checks float64 (the tight bound) on the single- and the
# multi-task model; test_kernels checks every model's float32 on two cells
CASES = [
    ("7net-0", "float64"),
    ("7net-mf-0", "float64"),
    pytest.param("7net-0", "float32", marks=pytest.mark.slow),
    pytest.param("7net-mf-0", "float32", marks=pytest.mark.slow),
    pytest.param("7net-l3i5", "float32", marks=pytest.mark.slow),
    pytest.param("7net-l3i5", "float64", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("model", "dtype"), CASES)
def test_slotted_kernels_match_e3nn(model, dtype):
    """Every structure's energy, forces and stress equal e3nn's forward; with a
    multi-task model each structure runs at its own head in the one batch;
    the unknown element fails alone."""
    pot = load_model(model, device="cpu", dtype=dtype, cache=False)
    structures = _batch()
    heads = pot.tasks or [None]
    tasks = [heads[i % len(heads)] for i in range(len(structures))]
    fast = predict(structures, model=pot, task=tasks)
    ref = predict(structures, model=_reference(model, dtype), task=tasks)
    assert fast[-1].error is not None and "Og" in fast[-1].error
    assert all(p.error is None for p in fast[:-1] + ref[:-1])
    worst = _worst(fast[:-1], ref[:-1], structures[:-1])
    assert max(worst.values()) < TOLERANCE[dtype], worst
    if len(heads) > 1:  # the heads really differ on the same structure
        both = predict([structures[1]] * 2, model=pot, task=heads[:2])
        assert abs(both[0].energy - both[1].energy) > 1e-3


def _drop_last_bucket(monkeypatch):
    """The nodes with the fewest neighbours get no messages."""
    grouped = convolution.Convolution.grouped

    def planted(self, x, sh, radial, senders, buckets):
        sh = [*sh[:-1], torch.zeros_like(sh[-1])]
        return grouped(self, x, sh, radial, senders, buckets)

    monkeypatch.setattr(convolution.Convolution, "grouped", planted)


def _float32_couplings(monkeypatch):
    """The Clebsch-Gordan buffers rounded to float32 (as before this test)."""
    coupling = tensor_product.coupling
    monkeypatch.setattr(
        tensor_product, "coupling", lambda *ls: coupling(*ls).float().double()
    )


@pytest.mark.parametrize(
    "plant",
    [_float32_couplings, pytest.param(_drop_last_bucket, marks=pytest.mark.slow)],
)
def test_parity_check_catches_a_wrong_kernel(plant, monkeypatch):
    """The float64 check above fails on a planted fault."""
    structures = _batch()[:-1]
    ref = predict(structures, model=_reference("7net-0", "float64"))
    plant(monkeypatch)
    pot = load_model("7net-0", device="cpu", dtype="float64", cache=False)
    worst = _worst(predict(structures, model=pot), ref, structures)
    assert max(worst.values()) > TOLERANCE["float64"]
