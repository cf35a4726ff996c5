"""A screening run: plan the calculations of a spec, run what is not stored, report.

Used by ``sevenomni run`` and ``submit``; each step is a function that tests
can call.

- **Plan.** Every calculation the spec asks for gets its reuse key (see
  :mod:`sevenomni_flows.jobs.base`) before anything runs; the keys are
  looked up in the results store in a few bulk queries.  A calculation whose
  current document is ``completed`` is reused; a ``failed`` or ``skipped``
  one, or one with no document, is computed.
- **Execute.** The flow of the rest runs locally; every job writes one
  document per calculation as it goes.
- **Report.** Counts come from the plan: each planned calculation is
  completed, failed, skipped or missing (no document: a job that was killed).
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow, run_locally

from .flows import ScreeningMaker
from .jobs import ModelSettings
from .jobs.base import Item, resolve_input
from .jobs.relax import StaticMaker
from .schemas import Provenance, ResultDocument
from .spec import RunSpec, read_structures
from .stores.results import Publisher, lookup, results_store

__all__ = ["Plan", "execute", "open_store", "plan", "report", "tally"]

log = logging.getLogger("sevenomni")


def open_store(where: str | Path):
    """A connected JobStore from a folder (embedded), a MongoDB URI or a config file.

    A config file is jobflow's store format (see
    :func:`~sevenomni_flows.stores.job_store_from_file`).  MongoDB stores get
    indexes on the summary fields.
    """
    from .stores import (
        embedded_job_store,
        ensure_indexes,
        job_store_from_file,
        mongo_job_store,
    )

    text = str(where)
    if text.startswith(("mongodb://", "mongodb+srv://")):
        store = mongo_job_store(text)
    elif text.endswith((".yaml", ".yml", ".json")):
        store = job_store_from_file(text)
    else:
        store = embedded_job_store(where)
    store.connect()
    ensure_indexes(store)
    return store


@dataclass
class Plan:
    """The calculations of a spec, and the jobs of those not stored yet.

    Attributes
    ----------
    flow : Flow
        The jobs to run.
    planned : dict
        Every planned calculation: reuse key -> ``(label, property)``.
    reused : int
        Calculations whose stored result is reused.
    to_relax : int
        Structures that will be relaxed (not stored).
    input_failures : list
        Documents of inputs that could not be read (stored by
        :func:`record_inputs`).
    """

    flow: Flow
    planned: dict[str, tuple[str, str]] = field(default_factory=dict)
    reused: int = 0
    to_relax: int = 0
    n_materials: int = 0
    n_properties: int = 0
    input_failures: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_jobs(self) -> int:
        """Jobs to run (nested flows included)."""
        return _count(self.flow)

    @property
    def to_compute(self) -> int:
        """Calculations that will be computed."""
        return len(self.planned) - self.reused - len(self.input_failures)


def _count(flow: Flow) -> int:
    return sum(_count(j) if isinstance(j, Flow) else 1 for j in flow.jobs)


def _input_failure(label: str, error: str, settings: ModelSettings):
    """A failed document for a structure source that could not be read."""
    pot, task = settings.potential()
    key = "input-" + hashlib.sha256(f"{label}|{error}".encode()).hexdigest()[:10]
    return ResultDocument(
        formula="unknown",
        structure_id=key,
        label=label,
        property="input",
        model=Provenance.from_potential(pot, task),
        state="failed",
        error=error if error.startswith(label) else f"{label}: {error}",
        error_type="InputError",
        key=key,
        protocol={"property": "input", "on": label},
    )


def screening_from_spec(spec: RunSpec, settings: ModelSettings, plots: str):
    """The screening Maker a spec describes (all jobs on ``settings``)."""
    return ScreeningMaker(
        properties=list(dict.fromkeys(["relax", *spec.properties])),
        adsorption_maker=spec.adsorption.maker(plot_dir=plots),
        slab_convergence_maker=spec.slab_convergence.maker(plot_dir=plots),
        md_maker=spec.md.maker(
            plot_dir=plots, trajectory_dir=str(Path(plots).parent / "trajectories")
        ),
        relax_maker=spec.relax.maker(),
        static_maker=StaticMaker(),
        elastic_maker=spec.elastic.maker(),
        phonon_maker=spec.phonon.maker(plot_dir=plots),
        eos_maker=spec.eos.maker(plot_dir=plots),
        structures_per_job=spec.cluster.structures_per_job,
    ).with_settings(settings)


def plan(spec: RunSpec, base: Path, store, settings: ModelSettings, plots: str) -> Plan:
    """The flow of what is not stored yet (results are reused by reuse key)."""
    start = time.perf_counter()
    pot, task = settings.potential()
    screening = screening_from_spec(spec, settings, plots)
    makers = screening.makers()
    results = results_store(store)
    materials, failures = [], []
    for label, obj in read_structures(spec.structures, base):
        if isinstance(obj, str):
            failures.append(_input_failure(label, obj, settings))
        else:
            materials.append((label, obj))
    planned: dict[str, tuple[str, str]] = {d.key: (d.label, "input") for d in failures}
    owed: list[dict[str, list[str]]] = []  # per material: property -> keys
    for label, structure in materials:
        item = resolve_input(structure, label)
        relax_key = makers["relax"].targets(item, pot, task)[0].key
        on_relax = Item(item.formula, item.structure_id, label, relax_key)
        keys = {"relax": [relax_key]}
        for prop in screening.properties:
            if prop != "relax":
                keys[prop] = [t.key for t in makers[prop].targets(on_relax, pot, task)]
        owed.append(keys)
        planned.update({k: (label, p) for p, ks in keys.items() for k in ks})
    mofs = []
    for entry in spec.frameworks:
        label = entry.name or Path(entry.file).stem
        for prop in spec.framework_properties:
            if prop == "adsorption":
                mof = spec.mof.maker(guests=entry.guests, plot_dir=plots)
            else:
                mof = spec.widom.maker(plot_dir=plots)
            mof.settings = settings
            framework = mof.resolve(base / entry.file, label)
            keys = [t.key for t in mof.targets(framework, pot, task)]
            planned.update({k: (label, prop) for k in keys})
            mofs.append((mof, str(base / entry.file), label, keys))
    if spec.bands:
        neb = spec.neb.maker(plot_dir=plots)
        neb.settings = settings
        described = [entry.describe(base) for entry in spec.bands]
        band_labels = [label for label, _ in described]
        band_inputs = [obj for _, obj in described]
        band_keys = []
        for label, obj in described:
            if isinstance(obj, str):  # its structure could not be read
                failures.append(_input_failure(label, obj, settings))
                planned[failures[-1].key] = (label, "input")
                continue
            item = neb.resolve(obj, label)
            keys = [t.key for t in neb.targets(item, pot, task)]
            planned.update({k: (label, "neb") for k in keys})
            band_keys += keys
    state = {
        k: d.get("state")
        for k, d in lookup(results, planned, properties=["key", "state"]).items()
    }

    def done(keys: list[str]) -> bool:
        return all(state.get(k) == "completed" for k in keys)

    relaxed, skip = {}, set()
    for i, keys in enumerate(owed):
        if done(keys["relax"]):
            relaxed[i] = keys["relax"][0]
        for prop, ks in keys.items():
            if prop != "relax" and done(ks):
                skip.add((i, prop))
    needed = {
        relaxed[i]
        for i in relaxed
        if any((i, p) not in skip for p in owed[i] if p != "relax")
    }
    stored = lookup(results, needed) if needed else {}
    # a reused relaxation's document is passed on only where a property needs it
    relaxed = {i: stored.get(k, k) for i, k in relaxed.items()}
    flow = screening.make(
        [s for _, s in materials], [label for label, _ in materials], relaxed, skip
    )
    parts = [flow] if flow.jobs else []
    for mof, path, label, keys in mofs:
        if not done(keys):
            parts.append(mof.make(path, label))
    if spec.bands and not done(band_keys):
        good = [i for i, obj in enumerate(band_inputs) if isinstance(obj, dict)]
        if good:
            parts.append(
                neb.make([band_inputs[i] for i in good], [band_labels[i] for i in good])
            )
    reused = sum(1 for k in planned if state.get(k) == "completed")
    return Plan(
        flow=Flow(parts, name="sevenomni run") if parts else flow,
        planned=planned,
        reused=reused,
        to_relax=len(materials) - len(relaxed),
        n_materials=len(materials),
        n_properties=len(screening.properties),
        input_failures=failures,
        seconds=time.perf_counter() - start,
    )


def record_inputs(run: Plan, store) -> None:
    """Store the failed documents of unreadable inputs (replacing older ones)."""
    if run.input_failures:
        Publisher(results_store(store), None).add(run.input_failures, flush=True)


class _Progress(logging.Handler):
    """Prints finished jobs and the progress lines of long batched jobs."""

    def __init__(self, total: int):
        super().__init__(logging.INFO)
        self.total = total
        self.done = 0
        self.start = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        elapsed = time.perf_counter() - self.start
        if record.name.startswith("sevenomni"):
            print(f"  {msg}", flush=True)
        elif msg.startswith("Finished job - "):
            self.done += 1
            name = msg.removeprefix("Finished job - ").rsplit(" (", 1)[0]
            print(
                f"  [job {self.done}/{self.total}] {name} done ({elapsed:.1f} s)",
                flush=True,
            )
        elif " failed with exception:" in msg:
            self.done += 1
            name = msg.split(" failed with exception:")[0]
            last = msg.strip().splitlines()[-1]
            print(f"  [job {self.done}/{self.total}] {name} FAILED: {last}", flush=True)


def execute(run: Plan, store) -> None:
    """Store input failures, then run the planned jobs locally, with progress."""
    record_inputs(run, store)
    if not run.n_jobs:
        return
    handler = _Progress(run.n_jobs)
    loggers = [logging.getLogger("jobflow"), logging.getLogger("sevenomni.progress")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", "Some jobs are not connected")
            run_locally(run.flow, store=store, log=False, ensure_success=False)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
            logger.propagate = True


def report(run: Plan, store) -> list[dict]:
    """The current document of every planned calculation (summary rows)."""
    from .summary import summarize

    found = lookup(results_store(store), run.planned)
    rows = [summarize(found[k]) for k in run.planned if k in found]
    rows.sort(key=lambda r: (str(r.get("label")), str(r.get("property"))))
    return rows


def tally(run: Plan, rows: list[dict]) -> dict[str, int]:
    """How many planned calculations ended in each state (``missing``: none)."""
    counts = Counter(r.get("state") for r in rows)
    counts["missing"] = len(run.planned) - len(rows)
    counts["unconverged"] = sum(
        1 for r in rows if r.get("property") == "relax" and r.get("converged") is False
    )
    return {
        k: counts.get(k, 0)
        for k in ("completed", "failed", "skipped", "missing", "unconverged")
    }
