"""Summary fields of stored results, for ``sevenomni query`` and run tables."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

__all__ = ["COMMON", "PER_PROPERTY", "format_rows", "summarize", "to_mongo_filter"]

COMMON = ["formula", "structure_id", "property", "model", "state", "error", "plots"]
PER_PROPERTY = {
    "relax": ["energy_per_atom", "volume_per_atom", "converged"],
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
}


def to_mongo_filter(user: dict) -> dict:
    """Prefix summary-field keys with ``output.`` (operators pass through)."""
    out: dict[str, Any] = {}
    for key, value in user.items():
        if key.startswith("$"):
            out[key] = (
                [to_mongo_filter(v) for v in value]
                if isinstance(value, list)
                else value
            )
        elif key.startswith("output."):
            out[key] = value
        else:
            out[f"output.{key}"] = value
    return out


def summarize(output: dict) -> dict:
    """The summary fields of one stored output document."""
    model = output.get("model") or {}
    row = {
        "formula": output.get("formula"),
        "structure_id": output.get("structure_id"),
        "property": output.get("property"),
        "model": {
            "name": model.get("name"),
            "sha256": model.get("sha256"),
            "task": model.get("task"),
        },
        "state": output.get("state"),
        "error": output.get("error"),
        "plots": output.get("plots") or [],
    }
    for key in PER_PROPERTY.get(output.get("property"), []):
        row[key] = output.get(key)
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
    flat = {k: v for k, v in row.items() if k != "model"}
    flat["model"] = row["model"]["name"]
    flat["task"] = row["model"]["task"]
    flat.pop("elastic_tensor", None)
    return flat


def format_rows(rows: list[dict], fmt: str) -> str:
    """Rows as a table, CSV or JSON."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    flat = [_flat(r) for r in rows]
    columns = ["formula", "structure_id", "property", "model", "task", "state"]
    extra = []
    for r in flat:
        for k in r:
            if k not in columns and k not in extra and k not in ("error", "plots"):
                extra.append(k)
    columns += [*extra, "plots", "error"]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in flat:
            writer.writerow({k: _cell(r.get(k)) for k in columns})
        return buf.getvalue()
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
