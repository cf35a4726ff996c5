"""The outcome of a run: the current document of every planned calculation."""

from __future__ import annotations

from collections import Counter

from ..stores.results import lookup, results_store
from .plan import Plan

__all__ = ["report", "tally"]


def report(run: Plan, store) -> list[dict]:
    """The current document of every planned calculation (summary rows)."""
    from ..summary import summarize

    found = lookup(results_store(store), run.planned)
    rows = [summarize(found[k]) for k in run.planned if k in found]
    rows.sort(key=lambda r: (str(r.get("label")), str(r.get("property"))))
    return rows


def tally(run: Plan, rows: list[dict]) -> dict[str, int]:
    """How many planned calculations ended in each state (``missing``: none)."""
    counts = Counter(r.get("state") for r in rows)
    counts["missing"] = len(run.planned) - len(rows)
    counts["unconverged"] = sum(
        1
        for r in rows
        if r.get("property") == "relax"
        and r.get("state") == "completed"  # a refused input never ran
        and r.get("converged") is False
    )
    return {
        k: counts.get(k, 0)
        for k in ("completed", "failed", "skipped", "missing", "unconverged")
    }
