"""The thermal-conductivity oracle: phono3py driven by an ASE calculator
(e.g. sevenn's), one displaced supercell at a time, as a phono3py user
writes it (full, not compact, force constants).  Shared by
tests/flows/test_thermal_conductivity.py and benchmarks/thermal_speed.py."""

import contextlib
import io

import numpy as np
from ase import Atoms
from phono3py import Phono3py
from phonopy.structure.atoms import PhonopyAtoms


def _forces(cells, n_atoms, calc):
    """Forces of each supercell (zeros for pairs phono3py skips), less drift."""
    forces = []
    for sc in cells:
        if sc is None:  # a pair beyond cutoff_pair_distance
            forces.append(np.zeros((n_atoms, 3)))
            continue
        atoms = Atoms(
            sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True
        )
        atoms.calc = calc
        f = atoms.get_forces()
        forces.append(f - f.mean(axis=0))
    return np.array(forces)


def phono3py_kappa(atoms, maker, calc):
    """phono3py with ``calc``'s forces and ``maker``'s settings (its
    ``supercell`` must be given); returns the Phono3py object after
    ``run_thermal_conductivity``."""
    unit = PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=atoms.cell.array,
        scaled_positions=atoms.get_scaled_positions(),
    )
    ph3 = Phono3py(
        unit,
        supercell_matrix=maker.phonon.supercell,
        phonon_supercell_matrix=maker.phonon_supercell,
        primitive_matrix="auto",
    )
    ph3.generate_displacements(
        distance=maker.phonon.displacement,
        cutoff_pair_distance=maker.cutoff_pair_distance,
    )
    ph3.forces = _forces(ph3.supercells_with_displacements, len(ph3.supercell), calc)
    ph3.produce_fc3(symmetrize_fc3r=maker.symmetrize)
    if maker.phonon_supercell is not None:
        ph3.phonon_forces = _forces(
            ph3.phonon_supercells_with_displacements, len(ph3.phonon_supercell), calc
        )
        ph3.produce_fc2(symmetrize_fc2=maker.symmetrize)
    ph3.mesh_numbers = maker.phonon.mesh
    with contextlib.redirect_stdout(io.StringIO()):
        ph3.init_phph_interaction()
        ph3.run_thermal_conductivity(
            is_LBTE=maker.method == "lbte",
            temperatures=maker.temperature_list(),
            is_isotope=maker.isotope,
        )
    return ph3


def kappa_average(ph3) -> np.ndarray:
    """A third of the trace of kappa at each temperature, W/m/K."""
    return np.asarray(ph3.thermal_conductivity.kappa)[0, :, :3].mean(axis=1)
