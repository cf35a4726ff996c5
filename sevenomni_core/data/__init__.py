"""Structures to graphs: neighbour lists, validation and batching."""

from .graph import AtomGraph, atoms_to_graph, collate, edge_vectors
from .neighbors import neighbor_list
from .validate import MIN_DISTANCE, InvalidStructureError, validate_atoms

__all__ = [
    "MIN_DISTANCE",
    "AtomGraph",
    "InvalidStructureError",
    "atoms_to_graph",
    "collate",
    "edge_vectors",
    "neighbor_list",
    "validate_atoms",
]
