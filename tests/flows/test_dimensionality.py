"""Which structures are 3D bulk crystals: known dimensionalities."""

import pytest
from ase.build import bulk, fcc111, graphene_nanoribbon, molecule, mx2
from ase.lattice.hexagonal import Graphite

from sevenomni_flows.dimensionality import bonded_dimension


def _slab():
    slab = fcc111("Cu", (2, 2, 3), vacuum=6.0)
    slab.pbc = True
    return slab


def _ribbon():
    ribbon = graphene_nanoribbon(2, 1, type="armchair", saturated=True, vacuum=6.0)
    ribbon.pbc = True
    return ribbon


def _mos2():
    layer = mx2("MoS2", vacuum=6.0)
    layer.pbc = True
    return layer


CASES = {
    "CO in a box": (lambda: molecule("CO", vacuum=3.0, pbc=True), 0),
    "C60 in a box": (lambda: molecule("C60", vacuum=4.0, pbc=True), 0),
    "graphene ribbon": (_ribbon, 1),
    "Cu(111) slab": (_slab, 2),
    "MoS2 monolayer": (_mos2, 2),
    "Cu": (lambda: bulk("Cu"), 3),
    "NaCl": (lambda: bulk("NaCl", "rocksalt", a=5.64), 3),
    # held by van der Waals contacts only: still bulk crystals
    "graphite": (lambda: Graphite("C", latticeconstant={"a": 2.46, "c": 6.70}), 3),
    "solid Ar": (lambda: bulk("Ar", "fcc", a=5.26), 3),
}


@pytest.mark.parametrize("name", CASES)
def test_dimensionality_of_known_structures(name):
    build, expected = CASES[name]
    assert bonded_dimension(build()) == expected
