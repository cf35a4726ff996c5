"""Planning: every calculation a spec asks for, by reuse key, and the jobs of
those not stored yet.

Every calculation gets its key (see :mod:`sevenomni_flows.jobs.base`) before
anything runs, from the same ``targets`` the jobs use; the keys are looked
up in the results store in a few bulk queries.  A ``completed`` document is
reused, and so is a failure a rerun cannot fix (unless asked to retry); any
other calculation is computed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow

from ..flows import ScreeningMaker
from ..jobs import ModelSettings
from ..jobs.base import Item, resolve_input
from ..schemas import Provenance, structure_id
from ..spec import Input, RunSpec, read_structures
from ..stores.results import lookup, results_store
from .frameworks import PORE_BLOCKED, plan_frameworks
from .inputs import input_failure, new_names

__all__ = ["Plan", "plan", "screening_from_spec"]


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
    kept_failures : int
        Stored failures a rerun cannot fix, kept (see :func:`plan`).
    to_compute : int
        Calculations that will be computed (each planned key once).
    to_relax : int
        Structures that will be relaxed (not stored).
    input_failures : list
        Documents of inputs that could not be read (stored by
        :func:`record_inputs`).
    stale_inputs : list
        Keys of stored input failures whose input now reads (retired by
        :func:`record_inputs`).
    aliases : dict
        Names to add to documents after the run (see :func:`new_names`).
    """

    flow: Flow
    planned: dict[str, tuple[str, str]] = field(default_factory=dict)
    reused: int = 0
    kept_failures: int = 0
    to_compute: int = 0
    to_relax: int = 0
    n_materials: int = 0
    n_properties: int = 0
    n_frameworks: int = 0
    input_failures: list = field(default_factory=list)
    stale_inputs: list = field(default_factory=list)
    aliases: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_jobs(self) -> int:
        """Jobs to run (nested flows included)."""
        return _count(self.flow)


def _count(flow: Flow) -> int:
    return sum(_count(j) if isinstance(j, Flow) else 1 for j in flow.jobs)


def screening_from_spec(
    spec: RunSpec, settings: ModelSettings, plots: str, base: Path = Path(".")
):
    """The screening Maker a spec describes (all jobs on ``settings``; files
    a section names are read relative to ``base``)."""
    extra = {
        "spec_dir": str(base),
        "plot_dir": plots,
        "trajectory_dir": str(Path(plots).parent / "trajectories"),
        "settings": settings,
    }
    props = list(dict.fromkeys(["relax", *spec.properties]))
    return ScreeningMaker(
        properties=props,
        relax_maker=spec.maker("relax", **extra),
        makers={p: spec.maker(p, **extra) for p in props if p != "relax"},
        structures_per_job=spec.cluster.structures_per_job,
    )


def plan(
    spec: RunSpec,
    base: Path,
    store,
    settings: ModelSettings | list[ModelSettings],
    plots: str,
    retry_failed: bool = False,
) -> Plan:
    """The flow of what is not stored yet (results are reused by reuse key).

    ``settings`` may be a list, one per task: every calculation is planned
    at each task, with its own keys and documents; the materials' jobs mix
    the tasks in their batches.

    A stored failure that a rerun cannot fix (``transient`` false: bad
    input, a guard, divergence, an unconverged step) is kept, not computed
    again, unless ``retry_failed``; transient failures (out of memory, a
    timeout, a lost connection: see
    :func:`~sevenomni_flows.schemas.documents.is_transient`) and
    calculations with no document are computed.
    """
    start = time.perf_counter()
    every = settings if isinstance(settings, list) else [settings]
    settings = every[0]
    # the model is loaded once, and built only when a job computes
    loaded = [s.potential(build=False) for s in every]
    pot, task = loaded[0]
    tasks = [t for _, t in loaded]
    provenance = Provenance.from_potential(pot, task)
    screening = screening_from_spec(spec, settings, plots, base)
    results = results_store(store)
    materials, failures, readable = [], [], []
    names: dict[str, list[Input]] = {}  # structure id -> every input naming it
    for inp in read_structures(spec.structures, base):
        if isinstance(inp.structure, str):
            failures.append(
                input_failure(inp.label, inp.structure, provenance, inp.source)
            )
            continue
        readable.append(inp.label)
        inp.structure.properties["source"] = inp.source
        sid = structure_id(inp.structure)
        if sid not in names:  # identical inputs are computed once
            names[sid] = []
            materials.append((inp.label, inp.structure))
        names[sid].append(inp)
    planned: dict[str, tuple[str, str]] = {d.key: (d.label, "input") for d in failures}
    structures, labels, roles = screening.inputs(
        [s for _, s in materials], [label for label, _ in materials]
    )
    # every input at every task: the jobs mix the tasks in their batches
    input_tasks = [t for t in tasks for _ in structures]
    structures, labels = structures * len(tasks), labels * len(tasks)
    roles = roles * len(tasks)
    aliases: dict[str, list[Input]] = {}  # key -> the inputs that ask for it
    owed: list[dict[str, list[str]]] = []  # per input: property -> keys
    on_relax = []
    for label, structure, t, role in zip(
        labels, structures, input_tasks, roles, strict=True
    ):
        item = resolve_input(structure, label)
        relax_key = screening.relax_maker.targets(item, pot, t)[0].key
        on = Item(item.formula, item.structure_id, label, relax_key, task=t, role=role)
        on_relax.append(on)
        owed.append({"relax": [relax_key]})
    for prop in screening.properties:
        if prop == "relax":
            continue
        maker = screening.maker(prop).over(on_relax)
        for item, keys in zip(on_relax, owed, strict=True):
            if maker.aggregate or item.role == "material":
                keys[prop] = [t.key for t in maker.targets(item, pot, item.task)]
    for item, keys in zip(on_relax, owed, strict=True):
        planned.update({k: (item.label, p) for p, ks in keys.items() for k in ks})
        if item.structure_id in names:  # not an input a property added
            aliases.update(
                {k: names[item.structure_id] for ks in keys.values() for k in ks}
            )
    mofs = []
    band_parts = []
    for settings, (pot, task) in zip(every, loaded, strict=True):
        fws = plan_frameworks(spec, base, settings, pot, task, plots)
        mofs.append(fws)  # batched jobs over the frameworks
        failures += fws.failures
        planned.update(fws.planned)
        readable += fws.readable
        if spec.bands:
            neb = spec.maker("neb", plot_dir=plots, settings=settings)
            described = [entry.describe(base) for entry in spec.bands]
            band_keys = []
            for label, obj in described:
                if isinstance(obj, str):  # its structure could not be read
                    failures.append(input_failure(label, obj, provenance))
                    planned[failures[-1].key] = (label, "input")
                    continue
                item = neb.resolve(obj, label)
                keys = [t.key for t in neb.targets(item, pot, task)]
                planned.update({k: (label, "neb") for k in keys})
                band_keys += keys
            band_parts.append((neb, described, band_keys))
    stored_state = lookup(
        results,
        planned,
        properties=["key", "state", "transient", "label", "labels", "error_type"],
    )
    state = {k: d.get("state") for k, d in stored_state.items()}
    kept = set()
    if not retry_failed:
        kept = {
            k
            for k, d in stored_state.items()
            if d.get("state") == "failed" and d.get("transient") is False
        }
    # a guest pore-blocked before that fits now is computed
    blocked = {d.key for fws in mofs for d in fws.failures}
    kept = {
        k
        for k in kept
        if stored_state[k].get("error_type") != PORE_BLOCKED or k in blocked
    }

    def done(keys: list[str]) -> bool:
        return all(state.get(k) == "completed" or k in kept for k in keys)

    relaxed, skip = {}, set()
    for i, keys in enumerate(owed):
        if done(keys["relax"]):
            relaxed[i] = keys["relax"][0]
        for prop, ks in keys.items():
            if prop != "relax" and done(ks):
                skip.add((i, prop))
    # a property of the set that is not done needs every relaxed input
    whole = any(
        screening.maker(p).aggregate and (i, p) not in skip
        for i, keys in enumerate(owed)
        for p in keys
        if p != "relax"
    )
    needed = {
        relaxed[i]
        for i in relaxed
        if whole or any((i, p) not in skip for p in owed[i] if p != "relax")
    }
    stored = lookup(results, needed) if needed else {}
    # a reused relaxation's document is passed on only where a property needs it
    relaxed = {i: stored.get(k, k) for i, k in relaxed.items()}
    flow = screening.make(structures, labels, relaxed, skip, input_tasks, roles)
    parts = [flow] if flow.jobs else []
    for fws in mofs:
        parts += fws.jobs(done, spec.cluster.structures_per_job)
    for neb, described, band_keys in band_parts:
        good = [(label, obj) for label, obj in described if isinstance(obj, dict)]
        if good and not done(band_keys):
            parts.append(neb.make([o for _, o in good], [label for label, _ in good]))
    reused = sum(1 for k in planned if state.get(k) == "completed")
    input_keys = {d.key for d in failures}
    # failures of inputs that now read, under this or an older key scheme
    stale = []
    if readable:
        old = results.query({"property": "input"}, properties=["key", "label"])
        now = set(readable)
        stale = [d["key"] for d in old if d.get("label") in now]
    return Plan(
        flow=Flow(parts, name="sevenomni run") if parts else flow,
        planned=planned,
        reused=reused,
        kept_failures=len(kept),
        to_compute=sum(1 for k in planned if not done([k]) and k not in input_keys),
        to_relax=len(structures) - len(relaxed),
        n_materials=len(materials),
        n_properties=len(screening.properties),
        n_frameworks=len(mofs[0].frameworks) if mofs else 0,
        input_failures=failures,
        stale_inputs=stale,
        aliases=new_names(aliases, stored_state),
        seconds=time.perf_counter() - start,
    )
