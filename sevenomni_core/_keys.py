"""Names of the fields of an atomic graph and of model outputs.

Each constant is the key of one tensor in :class:`sevenomni_core.data.AtomGraph`
or in the dictionary returned by :func:`sevenomni_core.model.evaluate`; the
comment gives its shape (``N`` atoms, ``E`` edges, ``B`` structures).
"""

from typing import Final

# -- graph inputs -----------------------------------------------------------
POSITIONS: Final[str] = "positions"  # (N, 3) Å, float64
SPECIES: Final[str] = "species"  # (N,) int64, index into the model's type map
BATCH: Final[str] = "batch"  # (N,) int64, structure index of each atom
EDGE_INDEX: Final[str] = "edge_index"  # (2, E) int64, [centre i, neighbour j]
EDGE_SHIFT: Final[str] = "edge_shift"  # (E, 3) float64, integer cell shifts S
CELL: Final[str] = "cell"  # (B, 3, 3) Å, float64, rows are lattice vectors
VOLUME: Final[str] = "volume"  # (B,) Å³, 0 for non-periodic structures
NUM_ATOMS: Final[str] = "num_atoms"  # (B,) int64
TASK: Final[str] = "task"  # (B,) int64, index into the model's task map
PBC: Final[str] = "pbc"  # (B, 3) bool, periodicity of each lattice vector

# -- derived inside the model -------------------------------------------------
EDGE_VECTORS: Final[str] = "edge_vectors"  # (E, 3) Å, r_j - r_i + S @ cell

# -- outputs ------------------------------------------------------------------
ENERGY: Final[str] = "energy"  # (B,) eV
ATOMIC_ENERGIES: Final[str] = "energies"  # (N,) eV
FORCES: Final[str] = "forces"  # (N, 3) eV/Å
STRESS: Final[str] = "stress"  # (B, 6) eV/Å³, ASE Voigt order and sign
