"""The QHA oracle: phonopy and PhonopyQHA driven by an ASE calculator (e.g.
sevenn's), one volume and one displaced supercell at a time, as a phonopy
user writes it.  Shared by tests/flows/test_qha.py and
benchmarks/thermal_speed.py."""

import numpy as np
from ase import Atoms
from phonopy import Phonopy, PhonopyQHA
from phonopy.structure.atoms import PhonopyAtoms
from phonopy.structure.grid_points import length2mesh


def phonopy_qha(
    atoms,
    maker,
    calc,
    supercell,
    primitive_matrix="auto",
    cutoff_frequency=None,
    pressure=0.0,
):
    """phonopy + PhonopyQHA with sevenn's calculator, volume by volume (the
    positions of these solids are fixed by symmetry at every volume).

    Volumes and energies are those of ``atoms``' cell; phonopy's free
    energies are per its primitive cell.  So ``primitive_matrix="auto"`` is
    right only for a primitive ``atoms``, and ``None`` (phonopy's thermal
    properties of the whole cell) for any cell.  ``supercell`` is of
    ``atoms``' cell; ``cutoff_frequency`` (THz) is phonopy's (None: zero).
    The q-mesh is ``maker.phonon.mesh`` (a length) on the middle volume's
    primitive cell, the same numbers at every volume.
    """
    grid = maker.temperatures
    temperatures = np.arange(0.0, grid.t_max + grid.t_step / 2, grid.t_step)
    volumes, energies, phonons = [], [], []
    for eps in maker.strains():
        cell = atoms.copy()
        cell.set_cell(atoms.cell.array * (1 + eps), scale_atoms=True)
        cell.calc = calc
        volumes.append(cell.get_volume())
        energies.append(cell.get_potential_energy())
        unit = PhonopyAtoms(
            symbols=cell.get_chemical_symbols(),
            cell=cell.cell.array,
            scaled_positions=cell.get_scaled_positions(),
        )
        phonons.append(
            Phonopy(unit, supercell_matrix=supercell, primitive_matrix=primitive_matrix)
        )
    middle = phonons[len(phonons) // 2].primitive
    mesh = length2mesh(maker.phonon.mesh, middle.cell)
    free, cv, entropy = [], [], []
    for phonon in phonons:
        phonon.generate_displacements(distance=maker.phonon.displacement)
        forces = []
        for sc in phonon.supercells_with_displacements:
            displaced = Atoms(
                sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True
            )
            displaced.calc = calc
            forces.append(displaced.get_forces())
        forces = np.array(forces)
        phonon.forces = forces - forces.mean(axis=1, keepdims=True)
        phonon.produce_force_constants()
        phonon.run_mesh(mesh, is_gamma_center=True)
        phonon.run_thermal_properties(
            temperatures=temperatures, cutoff_frequency=cutoff_frequency
        )
        thermal = phonon.get_thermal_properties_dict()
        free.append(thermal["free_energy"])
        cv.append(thermal["heat_capacity"])
        entropy.append(thermal["entropy"])
    return PhonopyQHA(
        volumes=volumes,
        electronic_energies=energies,
        temperatures=temperatures,
        free_energy=np.array(free).T,
        cv=np.array(cv).T,
        entropy=np.array(entropy).T,
        pressure=pressure,
        eos=maker.eos,
        t_max=grid.t_max,
    )
