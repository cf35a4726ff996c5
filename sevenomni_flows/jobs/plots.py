"""The start of every Maker's plot: pyplot off-screen, and the PNG's path."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

__all__ = ["alnum_name", "start_plot"]


def start_plot(folder: str | Path, name: str) -> tuple[ModuleType, Path]:
    """``matplotlib.pyplot`` on the Agg backend, and ``folder / name``.

    Parameters
    ----------
    folder : str or Path
        The plot folder (made, with its parents, if missing).
    name : str
        The PNG's file name.

    Returns
    -------
    plt : module
        ``matplotlib.pyplot`` (imported here: importing a Maker does not
        import matplotlib).
    path : Path
        Where the PNG goes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(folder).mkdir(parents=True, exist_ok=True)
    return plt, Path(folder) / name


def alnum_name(text: str) -> str:
    """``text`` as a file-name part: letters and digits, anything else ``_``.

    >>> alnum_name("Cu(111) CO")
    'Cu_111__CO'
    """
    return "".join(c if c.isalnum() else "_" for c in text)
