"""Reusable physics checks for any ASE calculator (used by our tests).

>>> from sevenomni_core.testing import check_equivariance, check_finite_differences
"""

from .checks import (
    check_equivariance,
    check_extensivity,
    check_finite_differences,
    random_rotation,
)

__all__ = [
    "check_equivariance",
    "check_extensivity",
    "check_finite_differences",
    "random_rotation",
]
