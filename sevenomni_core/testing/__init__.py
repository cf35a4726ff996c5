"""Reusable physics checks for any ASE calculator (used by our tests).

>>> from sevenomni_core.testing import check_equivariance, check_finite_differences
"""

from .batch import check_batch_consistency, odd_structures
from .checks import (
    check_equivariance,
    check_extensivity,
    check_finite_differences,
    evaluate,
    random_rotation,
)

__all__ = [
    "check_batch_consistency",
    "check_equivariance",
    "check_extensivity",
    "check_finite_differences",
    "evaluate",
    "odd_structures",
    "random_rotation",
]
