"""The start of every Maker's plot: pyplot off-screen, and the PNG's path."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

__all__ = ["alnum_name", "pyplot", "save_figure", "start_plot", "visible_colors"]


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
    Path(folder).mkdir(parents=True, exist_ok=True)
    return pyplot(), Path(folder) / name


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend (off-screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def visible_colors(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` distinct RGBA colors, each plainly visible on white.

    matplotlib's tab10 without its red and grey, then tab20's light tints:
    19 colors, every one of luminance below 0.85 (a sequential colormap
    such as PuBu starts near white, which hides a facet or a legend
    swatch); past 19 they repeat.
    """
    from matplotlib import colormaps

    dark = [c for k, c in enumerate(colormaps["tab10"].colors) if k not in (3, 7)]
    light = list(colormaps["tab20"].colors[1::2])
    palette = [(*c, 1.0) for c in dark + light]
    return [palette[k % len(palette)] for k in range(n)]


def save_figure(fig, folder: str | Path, name: str) -> str:
    """Write ``fig`` to ``folder / name`` as a PNG (120 dpi); its path.

    For figures made without pyplot (``matplotlib.figure.Figure``), which
    need no closing.
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / name
    fig.savefig(path, dpi=120)
    return str(path)


def alnum_name(text: str) -> str:
    """``text`` as a file-name part: letters and digits, anything else ``_``.

    >>> alnum_name("Cu(111) CO")
    'Cu_111__CO'
    """
    return "".join(c if c.isalnum() else "_" for c in text)
