"""Packages whose public names are imported on first use (PEP 562).

``import sevenomni_core`` runs the package's ``__init__``, and so does every
``import sevenomni_core.<module>``; a package that imported its torch modules
there would make even a light module (the model registry, the option names)
cost a torch import.  A lazy package lists where each name lives and imports
that module when the name is first asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str], exported: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package that imports each public
    name from its module on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    where : mapping
        Each public name -> its module, relative to the package (``".calculator"``).
    exported : list of str
        The package's ``__all__``, checked to list exactly the names of ``where``.

    Examples
    --------
    In a package's ``__init__.py``:

    >>> __all__ = ["SevenOmniCalculator"]  # doctest: +SKIP
    >>> __getattr__, __dir__ = lazy_exports(  # doctest: +SKIP
    ...     __name__, {"SevenOmniCalculator": ".calculator"}, __all__
    ... )
    """
    if sorted(where) != sorted(exported):
        raise ValueError(
            f"{package}: __all__ and the lazy names differ: "
            f"{sorted(set(where) ^ set(exported))}"
        )

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        setattr(import_module(package), name, value)  # asked once only
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(import_module(package)), *where})

    return __getattr__, __dir__
