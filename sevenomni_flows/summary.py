"""Summary fields of stored results, for ``sevenomni query`` and run tables."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

__all__ = ["COMMON", "PER_PROPERTY", "format_rows", "summarize", "to_mongo_filter"]

COMMON = [
    "label",
    "formula",
    "structure_id",
    "property",
    "key",
    "model",
    "state",
    "error",
    "error_type",
    "plots",
]
PER_PROPERTY = {
    "relax": ["energy_per_atom", "volume_per_atom", "converged", "steps"],
    "static": ["energy_per_atom"],
    "elastic": ["elastic_tensor", "bulk_modulus_vrh", "shear_modulus_vrh"],
    "phonon": ["has_imaginary_modes", "max_frequency", "free_energy_300k"],
    "eos": ["v0", "b0", "e0"],
    "adsorption": [
        "host",
        "adsorbate",
        "site",
        "adsorption_energy",
        "reference_scheme",
        "n_candidates",
        "n_anomalous",
    ],
    "slab_convergence": ["host", "adsorbate", "adsorption_energy", "max_deviation"],
    "md": [
        "ensemble",
        "temperature",
        "mean_temperature",
        "mean_pressure",
        "volume_change",
        "max_displacement",
        "still_crystalline",
        "diffusion_coefficient",
    ],
    "neb": ["barrier", "reverse_barrier", "reaction_energy", "converged"],
    "widom": [
        "host",
        "guest",
        "temperature",
        "henry_coefficient",
        "heat_of_adsorption",
        "effective_insertions",
        "dispersion",
    ],
}
UNITS = {
    "energy_per_atom": "eV/atom",
    "volume_per_atom": "Å³/atom",
    "bulk_modulus_vrh": "GPa",
    "shear_modulus_vrh": "GPa",
    "max_frequency": "THz",
    "free_energy_300k": "kJ/mol",
    "v0": "Å³/atom",
    "b0": "GPa",
    "e0": "eV/atom",
    "adsorption_energy": "eV",
    "max_deviation": "eV",
    "henry_coefficient": "mol/kg/Pa",
    "heat_of_adsorption": "kJ/mol",
    "temperature": "K",
    "mean_temperature": "K",
    "mean_pressure": "GPa",
    "volume_change": "%",
    "max_displacement": "Å",
    "diffusion_coefficient": "cm²/s",
    "barrier": "eV",
    "reverse_barrier": "eV",
    "reaction_energy": "eV",
}


def to_mongo_filter(user: dict) -> dict:
    """The user's filter on the results store (summary fields are top-level).

    ``output.``-prefixed keys (the JobStore's layout) are accepted too.
    """
    out: dict[str, Any] = {}
    for key, value in user.items():
        if key.startswith("$"):
            out[key] = (
                [to_mongo_filter(v) for v in value]
                if isinstance(value, list)
                else value
            )
        else:
            out[key.removeprefix("output.")] = value
    return out


def summarize(output: dict) -> dict:
    """The summary fields of one stored document."""
    model = output.get("model") or {}
    row = {
        "label": output.get("label"),
        "formula": output.get("formula"),
        "structure_id": output.get("structure_id"),
        "property": output.get("property"),
        "key": output.get("key"),
        "model": {
            "name": model.get("name"),
            "sha256": model.get("sha256"),
            "task": model.get("task"),
            "dtype": model.get("dtype"),
            "dispersion": (model.get("dispersion") or {}).get("damping"),
        },
        "state": output.get("state"),
        "error": output.get("error"),
        "error_type": output.get("error_type"),
        "plots": output.get("plots") or [],
        "protocol": output.get("protocol"),  # what the reuse key holds
    }
    for key in PER_PROPERTY.get(output.get("property"), []):
        row[key] = output.get(key)
    if "dispersion" in row:
        row["dispersion"] = row["model"]["dispersion"]
    return row


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return ";".join(_cell(v) for v in value) if value else "-"
    return str(value)


def _flat(row: dict) -> dict:
    flat = {k: v for k, v in row.items() if k not in ("model", "protocol")}
    flat["model"] = row["model"]["name"]
    flat["task"] = row["model"]["task"]
    flat.pop("elastic_tensor", None)
    return flat


def _table(flat: list[dict], columns: list[str]) -> str:
    headers = [f"{c} ({UNITS[c]})" if c in UNITS else c for c in columns]
    cells = [[_cell(r.get(c)) for c in columns] for r in flat]
    widths = [
        max(len(h), *(len(row[i]) for row in cells)) if cells else len(h)
        for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _columns(prop: str | None, rows: list[dict]) -> list[str]:
    extra = [k for k in PER_PROPERTY.get(prop, []) if k != "elastic_tensor"]
    cols = ["label", "formula", "state", *extra]
    if any(r.get("plots") for r in rows):
        cols.append("plots")
    if any(r.get("error") for r in rows):
        cols.append("error")
    return cols


def format_rows(rows: list[dict], fmt: str) -> str:
    """Rows as JSON, CSV (all columns), or one table per property.

    Each table has only its property's columns; the model and task of a
    table are in its title when all its rows share them.
    """
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    flat = [_flat(r) for r in rows]
    if fmt == "csv":
        columns = [c for c in COMMON if c not in ("model",)] + ["model", "task"]
        for r in flat:
            columns += [k for k in r if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in flat:
            writer.writerow({k: _cell(r.get(k)) for k in columns})
        return buf.getvalue()
    blocks = []
    for prop in dict.fromkeys(r.get("property") for r in flat):
        mine = [r for r in flat if r.get("property") == prop]
        models = {(r["model"], r["task"]) for r in mine}
        title = f"{prop}: {len(mine)} results"
        if len(models) == 1:
            name, task = next(iter(models))
            title += f" ({name}" + (f", task {task})" if task else ")")
        blocks.append(title + "\n" + _table(mine, _columns(prop, mine)))
    return "\n\n".join(blocks)
