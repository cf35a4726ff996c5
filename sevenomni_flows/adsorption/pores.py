"""Pore blocking: guests too large for a framework's pore-limiting diameter."""

from __future__ import annotations

from .adsorbates import get_adsorbate

__all__ = ["blocked_guests"]


def blocked_guests(guests: list[str], pld: float | None, source: str) -> dict:
    """The guests whose kinetic diameter exceeds the pore-limiting diameter.

    Parameters
    ----------
    guests : list of str
        Adsorbate names (see :data:`~.adsorbates.ADSORBATES`; those without a
        kinetic diameter are not checked).
    pld : float or None
        The framework's pore-limiting diameter, Å (None: not known, no check).
    source : str
        Where ``pld`` comes from (named in the reason).

    Returns
    -------
    dict
        ``guest -> reason`` for each guest that cannot pass the pore windows.

    >>> list(blocked_guests(["CO2", "N2"], 3.5, "the spec"))
    ['N2']
    """
    if pld is None:
        return {}
    sizes = {name: get_adsorbate(name).kinetic_diameter for name in guests}
    return {
        name: (
            f"pore-blocked: {name} (kinetic diameter {size:.2f} Å) "
            f"is larger than the pore-limiting diameter {pld:.2f} Å ({source}): "
            "its pores are not reachable through the windows"
        )
        for name, size in sizes.items()
        if size is not None and size > pld
    }
