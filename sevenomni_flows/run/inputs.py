"""What a spec's inputs leave in the store besides results: the failures of
unreadable inputs (one per input) and every name and source of a result."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ..schemas import Provenance, ResultDocument
from ..stores.results import Publisher, lookup, replace, results_store

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["input_failure", "input_key", "new_names", "record_inputs", "record_names"]


def input_key(label: str) -> str:
    """The key of the failed document of an unreadable input: its label's.

    One key per input, whatever its error, so that a changed bad file
    replaces its failure and a fixed one can be found and retired."""
    return "input-" + hashlib.sha256(label.encode()).hexdigest()[:10]


def input_failure(label: str, error: str, model: Provenance, source: str = ""):
    """A failed document for a structure source that could not be read."""
    key = input_key(label)
    identity = {
        "formula": "unknown",
        "structure_id": key,
        "label": label,
        "labels": [label],
        "sources": [source] if source else [],
        "property": "input",
        "key": key,
        "protocol": {"property": "input", "on": label},
    }
    return ResultDocument.failed(
        identity,
        model,
        error if error.startswith(label) else f"{label}: {error}",
        error_type="InputError",
    )


def new_names(aliases: dict[str, list], stored: dict[str, dict]) -> dict:
    """Names and sources to add to documents: ``key -> (labels, sources)``.

    Only where a stored (or about to be made) document lacks a name: the
    second and later names of identical inputs, and entries renamed since
    their result was stored.
    """
    out = {}
    for key, inputs in aliases.items():
        doc = stored.get(key, {})
        have = set(doc.get("labels") or [])
        if doc.get("label") is not None:
            have.add(doc["label"])
        if not doc:
            have.add(inputs[0].label)  # the job writes the first name itself
        if any(inp.label not in have for inp in inputs):
            out[key] = ([inp.label for inp in inputs], [inp.source for inp in inputs])
    return out


def record_inputs(run: Plan, store) -> None:
    """Store the failed documents of unreadable inputs (replacing older ones),
    and retire those of inputs that now read: a fixed file leaves exactly one
    current document, its result."""
    results = results_store(store)
    if run.stale_inputs:
        results.remove_docs({"key": {"$in": run.stale_inputs}})
    if run.input_failures:
        Publisher(results, None).add(run.input_failures, flush=True)


def record_names(run: Plan, store) -> None:
    """Add every name and source that asked for a calculation to its document
    (identical inputs under several names, renamed entries)."""
    if not run.aliases:
        return
    results = results_store(store)
    changed = []
    for key, doc in lookup(results, run.aliases).items():
        labels, sources = run.aliases[key]
        doc["labels"] = list(dict.fromkeys([*(doc.get("labels") or []), *labels]))
        doc["sources"] = list(dict.fromkeys([*(doc.get("sources") or []), *sources]))
        changed.append(doc)
    if changed:
        replace(results, changed)
