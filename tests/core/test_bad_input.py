"""Invalid structures fail early with a named culprit; odd-but-valid ones work."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.data import chemical_symbols

import sevenomni_core.calculator as calculator_module
from sevenomni_core import InvalidStructureError, SevenOmniCalculator, load_model

pytestmark = pytest.mark.usefixtures("models_dir", "one_torch_thread")


@pytest.fixture
def calc() -> SevenOmniCalculator:
    """7net-0 on the CPU (the shared, cached model)."""
    return SevenOmniCalculator("7net-0", device="cpu")


@pytest.fixture(scope="module")
def private_model():
    """A 7net-0 not in the shared cache, so its network can be sabotaged."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEVENOMNI_MODEL_DIR", "/nonexistent-sevenomni-models")
        return load_model("7net-0", cache=False)


def _first_missing_element() -> str:
    species = set(load_model("7net-0").network.species)
    return next(chemical_symbols[z] for z in range(1, 119) if z not in species)


def _bad_structures() -> list:
    nan = float("nan")
    return [
        pytest.param(
            lambda: Atoms("HOg", positions=[[0, 0, 0], [0, 0, 2.0]]),
            ["Og", "Z=118", "7net-0"],
            id="element-Og",
        ),
        pytest.param(
            # first element (in Z order) missing from 7net-0's own species list
            lambda: Atoms(
                f"Cu{_first_missing_element()}", positions=[[0, 0, 0], [0, 0, 2.5]]
            ),
            [lambda: _first_missing_element(), "7net-0", "not covered"],
            id="element-outside-species",
        ),
        pytest.param(
            lambda: Atoms("CuOH", positions=[[0, 0, 0], [3, 0, 0], [3, 0.3, 0]]),
            ["1 (O)", "2 (H)", "0.300 Å"],
            id="atoms-0.3A-apart",
        ),
        pytest.param(
            lambda: Atoms("Cu", cell=np.eye(3) * 0.3, pbc=True),
            ["0 (Cu)", "0.300 Å", "own periodic image"],
            id="atom-0.3A-from-own-image",
        ),
        pytest.param(
            lambda: Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [nan, 0, 0]]),
            ["non-finite position", "atom 2 (Cu)"],
            id="nan-position",
        ),
        pytest.param(lambda: Atoms(), ["no atoms"], id="empty"),
        pytest.param(
            lambda: Atoms("Cu", cell=[[2.5, 0, 0], [2.5, 0, 0], [0, 0, 2.5]], pbc=True),
            ["zero volume"],
            id="zero-volume-cell",
        ),
    ]


def _expected(parts) -> list[str]:
    return [p() if callable(p) else p for p in parts]


@pytest.mark.parametrize(("make", "parts"), _bad_structures())
def test_bad_structure_raises_named_error(calc, make, parts):
    """Each bad structure raises InvalidStructureError naming what is wrong."""
    atoms = make()
    atoms.calc = calc
    with pytest.raises(InvalidStructureError) as err:
        atoms.get_potential_energy()
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    for part in _expected(parts):
        assert part in msg, f"{part!r} not in {msg!r}"


@pytest.fixture
def sabotaged_calc(private_model, monkeypatch) -> SevenOmniCalculator:
    """A calculator on which building the graph or running the network fails loudly."""

    def no_compute(*args, **kwargs):
        raise AssertionError("compute reached")

    monkeypatch.setattr(private_model.network, "forward", no_compute)
    monkeypatch.setattr(calculator_module, "atoms_to_graph", no_compute)
    return SevenOmniCalculator(private_model)


def test_sabotage_is_effective(sabotaged_calc):
    """Control: a good structure on the sabotaged calculator reaches the compute."""
    atoms = bulk("Cu", "fcc", a=3.61)
    atoms.calc = sabotaged_calc
    with pytest.raises(AssertionError, match="compute reached"):
        atoms.get_potential_energy()


@pytest.mark.parametrize(("make", "parts"), _bad_structures())
def test_bad_structure_fails_before_compute(sabotaged_calc, make, parts):
    """Validation runs before the graph is built or the network is called."""
    atoms = make()
    atoms.calc = sabotaged_calc
    with pytest.raises(InvalidStructureError):
        atoms.get_forces()


def test_calculator_recovers_after_bad_structure(calc):
    """After a bad structure raised, the same calculator still gives correct results."""
    good = bulk("Cu", "fcc", a=3.61, cubic=True)
    good.rattle(0.05, seed=1)
    bad = good.copy()
    bad.positions[3] = bad.positions[2] + [0.3, 0, 0]

    bad.calc = calc
    with pytest.raises(InvalidStructureError):
        bad.get_potential_energy()

    good.calc = calc
    energy, forces = good.get_potential_energy(), good.get_forces()

    ref = good.copy()
    ref.calc = SevenOmniCalculator("7net-0", device="cpu")
    assert energy == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(forces, ref.get_forces(), atol=1e-6)
    assert np.abs(forces).max() > 1e-3  # a rattled cell: the forces are not trivial

    # and the same (mutated) Atoms object that was bad evaluates once fixed
    bad.positions[:] = good.positions
    assert bad.get_potential_energy() == pytest.approx(energy, abs=1e-6)


# ------------------------------------------------------------ valid edge cases


def test_isolated_atom_in_vacuum(calc):
    """A lone atom with no cell has no neighbours: finite energy, exactly zero force."""
    atoms = Atoms("Cu", positions=[[1.0, 2.0, 3.0]])
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    assert np.isfinite(energy)
    assert np.all(atoms.get_forces() == 0.0)
    # alone in a periodic box wider than twice the cutoff: no neighbours either
    boxed = Atoms("Cu", positions=[[1.0, 2.0, 3.0]], cell=np.eye(3) * 12.0, pbc=True)
    assert 12.0 > 2 * calc.potential.cutoff
    boxed.calc = calc
    assert boxed.get_potential_energy() == pytest.approx(energy, abs=1e-6)


def test_one_atom_cell_smaller_than_cutoff(calc):
    """Primitive fcc Cu (cell < cutoff): zero force, cubic stress, extensive energy."""
    atoms = bulk("Cu", "fcc", a=3.61)
    assert len(atoms) == 1
    assert np.linalg.norm(atoms.cell, axis=1).max() < calc.potential.cutoff
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    np.testing.assert_allclose(atoms.get_forces(), 0.0, atol=1e-5)
    stress = atoms.get_stress()
    assert stress.shape == (6,)
    assert np.isfinite(stress).all()
    np.testing.assert_allclose(stress[:3], stress[0], atol=1e-6)  # cubic: xx=yy=zz
    np.testing.assert_allclose(stress[3:], 0.0, atol=1e-6)
    cubic = bulk("Cu", "fcc", a=3.61, cubic=True)
    cubic.calc = calc
    assert cubic.get_potential_energy() / 4 == pytest.approx(energy, abs=1e-4)


def test_molecule_without_cell_has_no_stress(calc):
    """A molecule with no cell gives energy and forces; stress is not implemented."""
    atoms = molecule("H2O")
    assert not atoms.pbc.any()
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())
    assert np.isfinite(atoms.get_forces()).all()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_slab_with_mixed_pbc_has_stress(calc):
    """A slab periodic in x and y only still gives a finite stress."""
    atoms = fcc111("Cu", size=(2, 2, 2), vacuum=6.0)
    assert atoms.pbc.tolist() == [True, True, False]
    atoms.calc = calc
    stress = atoms.get_stress()
    assert stress.shape == (6,)
    assert np.isfinite(stress).all()
    assert np.abs(stress).max() > 0.0
    np.testing.assert_allclose(atoms.get_forces().sum(axis=0), 0.0, atol=1e-4)
