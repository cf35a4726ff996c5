"""Pore blocking: guests too large for a framework's pore-limiting diameter."""

from __future__ import annotations

__all__ = ["KINETIC_DIAMETERS", "blocked_guests"]

#: Kinetic diameters of gas molecules, Å (Breck, *Zeolite Molecular Sieves*,
#: 1974, table 8.14).
KINETIC_DIAMETERS = {
    "H2": 2.89,
    "H2O": 2.65,
    "CO": 3.76,
    "CO2": 3.30,
    "N2": 3.64,
    "CH4": 3.80,
    "NH3": 2.60,
    "O2": 3.46,
}


def blocked_guests(guests: list[str], pld: float | None, source: str) -> dict:
    """The guests whose kinetic diameter exceeds the pore-limiting diameter.

    Parameters
    ----------
    guests : list of str
        Canonical guest names.
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
    return {
        name: (
            f"pore-blocked: {name} (kinetic diameter {KINETIC_DIAMETERS[name]:.2f} Å) "
            f"is larger than the pore-limiting diameter {pld:.2f} Å ({source}): "
            "its pores are not reachable through the windows"
        )
        for name in guests
        if name in KINETIC_DIAMETERS and KINETIC_DIAMETERS[name] > pld
    }
