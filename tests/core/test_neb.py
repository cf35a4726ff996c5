"""Batched climbing-image NEB against ASE's NEB + FIRE."""

import numpy as np
import pytest
from ase.build import bulk
from ase.mep import NEB
from ase.optimize import FIRE

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.batch import neb, relax
from sevenomni_core.batch.neb import interpolate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pot64():
    return load_model("7net-0", device="cpu", dtype="float64")


@pytest.fixture(scope="module")
def vacancy_hop(pot64):
    """A vacancy hop in a 2x2x2 fcc Cu cell with one Ni (7 atoms), end points
    relaxed."""
    cell = bulk("Cu", "fcc", a=3.62) * (2, 2, 2)
    d = cell.get_distances(0, range(1, len(cell)), mic=True)
    j = 1 + int(np.argmin(d))
    # a Ni atom nearer one end than the other makes the profile uneven
    others = [m for m in range(1, len(cell)) if m != j]
    gap = [
        abs(cell.get_distance(m, 0, mic=True) - cell.get_distance(m, j, mic=True))
        for m in others
    ]
    cell.symbols[others[int(np.argmax(gap))]] = "Ni"
    first = cell.copy()
    del first[0]
    last = cell.copy()
    last.positions[j] = cell.positions[0]
    del last[0]
    ends = relax([first, last], model=pot64, fmax=0.005)
    assert all(r.converged for r in ends)
    return ends[0].atoms, ends[1].atoms


def test_neb_matches_ase_and_batched_equals_single(pot64, vacancy_hop):
    """CI-NEB of the hop gives ASE's barrier (NEB(climb=True) + FIRE, same
    calculator) within 5 meV; alone and batched with another band the band is
    the same; bad bands in the batch fail alone, naming what is wrong."""
    first, last = vacancy_hop
    kwargs = {"model": pot64, "n_images": 3, "fmax": 0.02, "max_steps": 300}
    [alone] = neb([(first, last)], **kwargs)
    assert alone.converged and alone.error is None

    images = interpolate(first, last, 3, "idpp")
    for image in images:
        image.calc = SevenOmniCalculator(pot64)
    band = NEB(images, climb=True, method="improvedtangent")
    FIRE(band, logfile=None).run(fmax=0.02, steps=300)
    e = np.array([image.get_potential_energy() for image in images])
    assert alone.barrier == pytest.approx(e.max() - e[0], abs=5e-3)
    assert alone.reverse_barrier == pytest.approx(e.max() - e[-1], abs=5e-3)
    assert alone.reaction_energy == pytest.approx(e[-1] - e[0], abs=1e-6)
    assert alone.barrier > 0.2  # a real barrier, not a flat path
    assert abs(alone.barrier - alone.reverse_barrier) > 1e-3  # uneven ends

    fewer = (
        [first]
        + [image.copy() for image in interpolate(first, last, 2, "linear")[1:-1]]
        + [last]
    )
    short = first.copy()
    del short[0]
    swapped = last.copy()
    swapped.symbols[0] = "Ag"
    out = neb(
        [(first, last), fewer, (first, short), (first, swapped), (first,)], **kwargs
    )
    np.testing.assert_allclose(out[0].energies, alone.energies, atol=1e-8)
    np.testing.assert_allclose(
        out[0].images[2].positions, alone.images[2].positions, atol=1e-8
    )
    assert out[0].steps == alone.steps
    assert out[1].converged and len(out[1].energies) == 4
    assert out[1].barrier == pytest.approx(alone.barrier, abs=0.05)  # coarser band
    assert "end points have 7 and 6 atoms" in out[2].error
    assert "differ in element or order at atom 0 (Cu vs Ag)" in out[3].error
    assert "a pair of end points or a list of images" in out[4].error
    # images carry their energies and forces
    assert out[0].images[0].get_potential_energy() == pytest.approx(out[0].energies[0])
