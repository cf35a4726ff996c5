"""Summary fields of stored results, for ``sevenomni query`` and run tables."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import yaml

from .jobs.base import reuse_key
from .jobs.registry import documents
from .schemas import unit_of

__all__ = [
    "COMMON",
    "cross_task",
    "field_rows",
    "format_fields",
    "format_rows",
    "indexed_fields",
    "per_property",
    "read_filter",
    "summarize",
    "to_mongo_filter",
    "unit",
]

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


def per_property() -> dict[str, tuple[str, ...]]:
    """The summary columns of each property (its document's ``columns``)."""
    return {prop: doc.columns for prop, doc in documents().items()}


def indexed_fields() -> list[str]:
    """Summary fields worth a database index (tensors left out)."""
    return list(
        dict.fromkeys(
            k for cols in per_property().values() for k in cols if k != "elastic_tensor"
        )
    )


def unit(prop: str | None, column: str) -> str | None:
    """The unit of a property's summary column (from its document field)."""
    doc = documents().get(prop)
    return None if doc is None else unit_of(doc, column)


#: MongoDB query operators a filter may use (MontyDB and MongoDB both know them).
QUERY_OPERATORS = (
    "$eq $ne $gt $gte $lt $lte $in $nin $and $or $nor $not $exists $regex "
    "$all $size $elemMatch $type $mod $options"
).split()
_LOGICAL = ("$and", "$or", "$nor")


def _check_operators(node: Any, field: str | None = None) -> None:
    """Raise ValueError naming the first unknown ``$`` operator in a filter
    (and the field it applies to), or a logical one not given a list of
    filters, or a ``$regex`` or ``$mod`` the database would choke on."""
    if isinstance(node, list):
        for item in node:
            _check_operators(item, field)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        key = str(key)
        if not key.startswith("$"):
            _check_operators(value, key)
            continue
        where = f" (on {field})" if field else ""
        if key not in QUERY_OPERATORS:
            raise ValueError(
                f"unknown query operator {key!r}{where}; supported: "
                + ", ".join(QUERY_OPERATORS)
            )
        if key in _LOGICAL and not (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) for v in value)
        ):
            raise ValueError(
                f"{key}{where} takes a list of filters, e.g. "
                f'{{"{key}": [{{"formula": "Si"}}, {{"formula": "Ge"}}]}}'
            )
        if key == "$regex":
            try:
                re.compile(value)
            except (TypeError, re.error) as err:
                raise ValueError(
                    f"$regex{where}: {value!r} is not a regular expression ({err})"
                ) from None
        if key == "$mod" and not (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) for v in value)
            and value[0] != 0
        ):
            raise ValueError(
                f"$mod{where} takes [divisor, remainder] with a divisor other "
                f"than 0, e.g. [2, 0]; got {value!r}"
            )
        _check_operators(value, field)


class _NumberLoader(yaml.SafeLoader):
    """A safe YAML loader that reads every number-shaped token as a number.

    YAML 1.1 (PyYAML) wants a dot and a signed exponent in a float, so
    ``1e-4``, ``-3E-5`` and ``-.5`` come back as strings, and a filter such as
    ``{$gt: 1e-4}`` then compares a number with a string and matches nothing.
    """


_FLOAT = "tag:yaml.org,2002:float"
_NumberLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != _FLOAT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_NumberLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_filter(text: str) -> Any:
    """A query filter's text as data: JSON, or else YAML (flow style).

    Numbers are numbers in either: ``1e-4``, ``-3E-5`` and ``.5`` are floats.

    Raises
    ------
    yaml.YAMLError
        When the text is neither JSON nor YAML.
    """
    try:
        return json.loads(text)
    except ValueError:
        return yaml.load(text, Loader=_NumberLoader)


def to_mongo_filter(user: dict) -> dict:
    """The user's filter on the results store (summary fields are top-level).

    ``output.``-prefixed keys (the JobStore's layout) are accepted too.

    Raises
    ------
    ValueError
        For an operator not in :data:`QUERY_OPERATORS`, naming it.
    """
    _check_operators(user)
    out: dict[str, Any] = {}
    names = []
    for key, value in user.items():
        if key.startswith("$"):
            out[key] = (
                [to_mongo_filter(v) for v in value]
                if isinstance(value, list)
                else value
            )
        elif key.removeprefix("output.") == "label":  # any name it was asked by
            names.append({"$or": [{"label": value}, {"labels": value}]})
        else:
            out[key.removeprefix("output.")] = value
    if names:
        return {"$and": [out, *names]} if out else names[0]
    return out


def summarize(output: dict) -> dict:
    """The summary fields of one stored document."""
    model = output.get("model") or {}
    row = {
        "label": ", ".join(
            dict.fromkeys([output.get("label"), *(output.get("labels") or [])])
        )
        if output.get("labels")
        else output.get("label"),
        "sources": output.get("sources") or [],
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
    for key in per_property().get(output.get("property"), ()):
        row[key] = output.get(key)
    if "dispersion" in row:
        row["dispersion"] = row["model"]["dispersion"]
    return row


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and not 1e-3 <= abs(value) < 1e6:
            return f"{value:.4e}"  # thermal expansion, Henry coefficients
        return f"{value:.4f}"
    if isinstance(value, list):
        return ";".join(_cell(v) for v in value) if value else "-"
    if isinstance(value, dict):  # e.g. surface energies by facet
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items()) or "-"
    return str(value)


#: The protocol of a row: what must agree for two rows to be comparable.
PROTOCOL = ("model", "task", "dtype", "dispersion", "settings")


def _settings_id(protocol: dict | None) -> str | None:
    """A short hash of a row's result-changing settings (its property's)."""
    if not protocol or "settings" not in protocol:
        return None
    return reuse_key(protocol["settings"])[:8]


def _flat(row: dict) -> dict:
    flat = {k: v for k, v in row.items() if k not in ("model", "protocol")}
    flat["model"] = row["model"]["name"]
    flat["task"] = row["model"]["task"]
    flat["dtype"] = row["model"]["dtype"]
    flat["dispersion"] = row["model"]["dispersion"]
    flat["settings"] = _settings_id(row.get("protocol"))
    flat.pop("elastic_tensor", None)
    return flat


def _table(flat: list[dict], columns: list[str], prop: str | None) -> str:
    headers = [f"{c} ({unit(prop, c)})" if unit(prop, c) else c for c in columns]
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
    extra = [k for k in per_property().get(prop, ()) if k != "elastic_tensor"]
    # the protocol fields that differ between these rows: they are not alike
    mixed = [k for k in PROTOCOL if len({str(r.get(k)) for r in rows}) > 1]
    cols = ["label", "formula", "state", *mixed, *extra]
    if any(r.get("plots") for r in rows):
        cols.append("plots")
    if any(r.get("error") for r in rows):
        cols.append("error")
    return cols


def cross_task(flat: list[dict]) -> str:
    """One table per property with a row per material: each task's value of
    every numeric summary column, and the difference of the last task from
    the first (``Δ``).  Rows must share everything but the task to be set
    side by side (their label, formula and structure); a material computed
    at one task only shows ``-`` for the other."""
    blocks = []
    for prop in dict.fromkeys(r.get("property") for r in flat):
        mine = [r for r in flat if r.get("property") == prop]
        tasks = list(dict.fromkeys(r.get("task") for r in mine))
        numeric = [  # measured values (not counts, flags or lists)
            c
            for c in per_property().get(prop, ())
            if any(isinstance(r.get(c), float) for r in mine)
        ]
        if len(tasks) < 2 or not numeric:
            continue
        by_material: dict[tuple, dict] = {}
        for r in mine:
            at = by_material.setdefault(
                (r.get("label"), r.get("formula"), r.get("structure_id")), {}
            )
            at[r.get("task")] = r
        table = []
        for (label, formula, _), at in by_material.items():
            row = {"label": label, "formula": formula}
            for c in numeric:
                values = [(at.get(t) or {}).get(c) for t in tasks]
                for t, v in zip(tasks, values, strict=True):
                    row[f"{c} {t}"] = v
                first, last = values[0], values[-1]
                if isinstance(first, int | float) and isinstance(last, int | float):
                    row[f"Δ{c}"] = last - first
            table.append(row)
        columns = ["label", "formula"]
        for c in numeric:
            columns += [f"{c} {t}" for t in tasks] + [f"Δ{c}"]
        names = ", ".join(map(str, tasks))
        title = f"{prop} by task ({names}; Δ: {tasks[-1]} − {tasks[0]})"
        units = {col: unit(prop, col.split(" ")[0].lstrip("Δ")) for col in columns}
        headers = {
            col: f"{col} ({units[col]})" if units[col] else col for col in columns
        }
        renamed = [{headers[k]: v for k, v in r.items()} for r in table]
        blocks.append(title + "\n" + _table(renamed, list(headers.values()), None))
    return "\n\n".join(blocks) or "no property was computed at two or more tasks"


def format_rows(rows: list[dict], fmt: str) -> str:
    """Rows as JSON, CSV (all columns), one table per property, or (``tasks``)
    one table per property with each task's values side by side.

    Each table has only its property's columns.  The protocol of its rows
    (model, task, dtype, dispersion, settings) is in its title where they
    share it; fields that differ between rows become columns and the title
    says the rows were not computed alike.  CSV has every column.
    """
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    flat = [_flat(r) for r in rows]
    if fmt == "tasks":
        return cross_task(flat)
    if fmt == "csv":
        columns = [c for c in COMMON if c not in ("model",)] + list(PROTOCOL)
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
        title = f"{prop}: {len(mine)} results"
        shared = {
            k: mine[0].get(k)
            for k in PROTOCOL
            if len({str(r.get(k)) for r in mine}) == 1
        }
        said = [
            f"task {v}" if k == "task" else f"+{v}" if k == "dispersion" else str(v)
            for k, v in shared.items()
            if v is not None and k != "settings"
        ]
        if said:
            title += f" ({', '.join(said)})"
        if len(shared) < len(PROTOCOL):
            mixed = [k for k in PROTOCOL if k not in shared]
            title += f"; rows differ in {', '.join(mixed)}: not computed alike"
        blocks.append(title + "\n" + _table(mine, _columns(prop, mine), prop))
    return "\n\n".join(blocks)


#: Identity columns of ``query --fields`` rows, before the fields asked for.
FIELD_ROWS = ("label", "formula", "property", "state", "key")
#: Lists longer than this show as a count in ``query --fields`` tables.
MAX_LISTED = 6


def _field(result: Any, name: str) -> Any:
    """A stored field, dotted names walking into mappings (``model.task``)."""
    first, *rest = name.split(".")
    value = result.get(first)
    for part in rest:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def field_rows(results: list, fields: list[str]) -> list[dict]:
    """One row per stored result: its identity, then each field asked for,
    JSON-ready (structures as pymatgen dicts, bulky fields loaded)."""
    from monty.json import jsanitize

    rows = []
    for r in results:
        row = {k: r.get(k) for k in FIELD_ROWS}
        if r.get("labels"):  # every name it was asked by, as summarize says
            row["label"] = ", ".join(dict.fromkeys([r.get("label"), *r["labels"]]))
        for name in fields:
            if name in FIELD_ROWS:  # already there
                continue
            row[name] = jsanitize(_field(r, name), strict=True, enum_values=True)
        rows.append(row)
    rows.sort(key=lambda r: (str(r.get("label")), str(r.get("property"))))
    return rows


def _short(value: Any) -> str:
    """A table cell: a structure by its formula, a long list by its length."""
    if isinstance(value, dict) and value.get("@class") == "Structure":
        return f"<{len(value.get('sites', []))}-site structure>"
    if isinstance(value, list) and any(_short(v).startswith("<") for v in value):
        return f"[{len(value)} structures]"
    if isinstance(value, list) and len(value) > MAX_LISTED:
        return f"[{len(value)} values]"
    if isinstance(value, list):
        return ";".join(_short(v) for v in value) or "-"
    return _cell(value)


def _csv_cell(value: Any) -> str:
    """A CSV cell: numbers and lists of them as in tables, nested values
    (tensors, structures, maps) as JSON."""
    flat = isinstance(value, list) and not any(
        isinstance(v, list | dict) for v in value
    )
    if isinstance(value, list | dict) and not flat:
        return json.dumps(value)
    return _cell(value)


def format_fields(rows: list[dict], fields: list[str], fmt: str) -> str:
    """``query --fields`` rows as JSON (every value in full), CSV (lists
    joined with ``;``) or a table (long lists and structures summarised);
    a field's header names its unit where the rows' documents agree on one."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    fields = [f for f in dict.fromkeys(fields) if f not in FIELD_ROWS]
    docs = [
        documents()[p] for p in {r.get("property") for r in rows} if p in documents()
    ]
    units = {f: {unit_of(d, f) for d in docs if f in d.model_fields} for f in fields}
    headers = [
        f"{f} ({next(iter(units[f]))})"
        if len(units[f]) == 1 and None not in units[f]
        else f
        for f in fields
    ]
    columns = [*FIELD_ROWS, *fields]
    titles = [*FIELD_ROWS, *headers]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(titles)
        for r in rows:
            writer.writerow([_csv_cell(r.get(c)) for c in columns])
        return buf.getvalue()
    shown = [
        {t: _short(r.get(c)) for t, c in zip(titles, columns, strict=True)}
        for r in rows
    ]
    table = _table(shown, [t for t in titles if t != "key"], None)
    if any(
        isinstance(r.get(f), list) and len(r[f]) > MAX_LISTED
        for r in rows
        for f in fields
    ):
        table += "\n(long lists are counted here: --format json or csv gives them)"
    return table
