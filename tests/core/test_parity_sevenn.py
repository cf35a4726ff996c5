"""Parity with the reference implementation on every shipped checkpoint and task."""

import numpy as np
import pytest
from structures import STRUCTURES

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.testing import evaluate

SHIPPED = [
    ("7net-0", None),
    ("7net-0_22May2024", None),
    ("7net-l3i5", None),
    ("7net-mf-0", "PBE"),
    ("7net-mf-0", "R2SCAN"),
]


def assert_parity(ours, ref, n_atoms):
    e, f, s = ours
    e_ref, f_ref, s_ref = ref
    assert abs(e - e_ref) / n_atoms < 1e-5, (e, e_ref)
    np.testing.assert_allclose(f, f_ref, atol=1e-4, rtol=0)
    if s_ref is not None:
        np.testing.assert_allclose(s, s_ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("model", "task"), SHIPPED)
@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_matches_sevenn(model, task, structure, sevenn_calculator):
    """Energy, forces and stress equal sevenn's on a varied structure set."""
    atoms = STRUCTURES[structure]()
    ours = SevenOmniCalculator(model, task=task, device="cpu")
    ref = sevenn_calculator(load_model(model).path, task)
    assert_parity(evaluate(ours, atoms), evaluate(ref, atoms), len(atoms))


def test_tasks_differ_and_match():
    """The two tasks of 7net-mf-0 give different energies (the task input matters)."""
    atoms = STRUCTURES["bulk"]()
    energies = []
    for task in ("PBE", "R2SCAN"):
        atoms.calc = SevenOmniCalculator("7net-mf-0", task=task, device="cpu")
        energies.append(atoms.get_potential_energy())
    assert abs(energies[0] - energies[1]) > 1e-2
