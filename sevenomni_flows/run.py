"""A screening run: plan the jobs a spec still needs, run them, report.

Used by ``sevenomni run``; each step is a function that tests can call.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow, run_locally

from .flows import ScreeningMaker
from .jobs import ElasticMaker, EosMaker, ModelSettings, PhononMaker, RelaxMaker
from .jobs.adsorption import MofAdsorptionMaker, SlabAdsorptionMaker
from .jobs.base import maker_settings, record, settings_key
from .jobs.relax import StaticMaker
from .schemas import structure_id
from .spec import RunSpec, read_structures

__all__ = ["Plan", "execute", "open_store", "plan", "report"]


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


def _input_failure(label: str, error: str, pot, task):
    """A failed document for a structure source that could not be read."""
    import hashlib

    from .schemas import Provenance, ResultDocument

    sid = "input-" + hashlib.sha256(f"{label}|{error}".encode()).hexdigest()[:10]
    return ResultDocument(
        formula=label,
        structure_id=sid,
        property="input",
        model=Provenance.from_potential(pot, task),
        state="failed",
        error=error,
        settings_key=sid,
    )


def _count_stored(store, sid: str, key: str) -> int:
    """How many completed single-material results match (id, protocol key)."""
    criteria = {
        "output.structure_id": sid,
        "output.settings_key": key,
        "output.state": "completed",
    }
    return sum(
        isinstance(d.get("output"), dict)
        for d in store.query(criteria, properties=["output"])
    )


def _stored(store, sid: str, key: str) -> dict | None:
    """A completed single-material result with this protocol key, if stored.

    Batched jobs store a list of documents; those are skipped (each material
    also has its own document).
    """
    criteria = {
        "output.structure_id": sid,
        "output.settings_key": key,
        "output.state": "completed",
    }
    for doc in store.query(criteria, properties=["output"]):
        if isinstance(doc.get("output"), dict):
            return doc
    return None


class _Progress(logging.Handler):
    """Prints one line per finished job of a jobflow run."""

    def __init__(self, total: int):
        super().__init__(logging.INFO)
        self.total = total
        self.done = 0
        self.start = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Finished job - "):
            self.done += 1
            name = msg.removeprefix("Finished job - ").rsplit(" (", 1)[0]
            elapsed = time.perf_counter() - self.start
            print(f"  [{self.done}/{self.total}] {name}  ({elapsed:.1f} s)", flush=True)
        elif " failed with exception:" in msg:
            self.done += 1
            name = msg.split(" failed with exception:")[0]
            last = msg.strip().splitlines()[-1]
            print(f"  [{self.done}/{self.total}] {name}  FAILED: {last}", flush=True)


@dataclass
class Plan:
    """The jobs a run still needs, and how to find its results afterwards."""

    flow: Flow
    ids: dict[str, str] = field(default_factory=dict)  # structure id -> label
    keys: dict[str, str] = field(default_factory=dict)  # protocol keys
    reused: int = 0
    n_materials: int = 0
    n_properties: int = 0

    @property
    def n_jobs(self) -> int:
        """Jobs to run (nested flows included)."""
        return sum(1 for _ in self.flow.iterflow()) if self.flow.jobs else 0


def screening_from_spec(spec: RunSpec, settings: ModelSettings, plots: str):
    """The screening Maker a spec describes (all jobs on ``settings``)."""
    return ScreeningMaker(
        properties=list(dict.fromkeys(["relax", *spec.properties])),
        adsorption_maker=SlabAdsorptionMaker(
            **spec.adsorption.model_dump(), relax_bulk=False, plot_dir=plots
        ),
        relax_maker=RelaxMaker(**spec.relax.model_dump()),
        static_maker=StaticMaker(),
        elastic_maker=ElasticMaker(**spec.elastic.model_dump()),
        phonon_maker=PhononMaker(**spec.phonon.model_dump(), plot_dir=plots),
        eos_maker=EosMaker(**spec.eos.model_dump(), plot_dir=plots),
        structures_per_job=spec.cluster.structures_per_job,
    ).with_settings(settings)


def plan(spec: RunSpec, base: Path, store, settings: ModelSettings, plots: str) -> Plan:
    """The flow of what is not stored yet (results are reused by protocol key)."""
    pot, task = settings.potential()
    screening = screening_from_spec(spec, settings, plots)
    makers = screening.makers()
    keys = {
        p: settings_key(p, pot.sha256, task, maker_settings(makers[p]))
        for p in screening.properties
    }
    n_ads = len(spec.adsorption.miller_indices) * len(spec.adsorption.adsorbates)
    materials, failures = [], []
    for label, item in read_structures(spec.structures, base):
        if isinstance(item, str):
            failures.append(_input_failure(label, item, pot, task))
        else:
            materials.append((label, item))
    relaxed, skip, reused = {}, set(), 0
    for i, (_, structure) in enumerate(materials):
        sid = structure_id(structure)
        for prop in screening.properties:
            if prop == "adsorption":
                if _count_stored(store, sid, keys[prop]) >= n_ads:
                    reused += 1
                    skip.add((i, prop))
                continue
            doc = _stored(store, sid, keys[prop])
            if doc is None:
                continue
            reused += 1
            if prop == "relax":
                relaxed[i] = doc["output"]
            else:
                skip.add((i, prop))
    flow = screening.make(
        [s for _, s in materials], relaxed, skip, [label for label, _ in materials]
    )
    parts = [flow] if flow.jobs else []
    ids = {structure_id(s): label for label, s in materials}
    for doc in failures:  # stored, so that query shows them too
        ids[doc.structure_id] = doc.formula
        keys[f"input {doc.formula}"] = doc.settings_key
        parts.append(record(doc))
    for entry in spec.frameworks:
        mof = MofAdsorptionMaker(
            **spec.mof.model_dump(),
            guests=entry.guests,
            plot_dir=plots,
            settings=settings,
        )
        path = str(base / entry.file)
        label = entry.name or Path(entry.file).stem
        key = settings_key("adsorption", pot.sha256, task, maker_settings(mof))
        keys[f"mof {label}"] = key
        sid = _framework_id(path, spec.mof.min_length)
        if sid is not None:
            ids[sid] = label
            if _count_stored(store, sid, key) >= len(entry.guests):
                reused += 1
                continue
        parts.append(mof.make(path, label))
    return Plan(
        flow=Flow(parts, name="sevenomni run") if parts else flow,
        ids=ids,
        keys=keys,
        reused=reused,
        n_materials=len(materials),
        n_properties=len(screening.properties),
    )


def _framework_id(path: str, min_length: float) -> str | None:
    """Structure id of a framework as the MOF job will build it; None if unreadable."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from .adsorption.mofs import read_framework

    try:
        framework = read_framework(path, min_length)
    except ValueError:
        return None  # the job reports the error
    return structure_id(AseAtomsAdaptor.get_structure(framework))


def execute(run: Plan, store) -> None:
    """Run the planned jobs locally, printing one line per finished job."""
    if not run.n_jobs:
        return
    handler = _Progress(run.n_jobs)
    jf_log = logging.getLogger("jobflow")
    jf_log.addHandler(handler)
    jf_log.setLevel(logging.INFO)
    jf_log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", "Some jobs are not connected")
            run_locally(run.flow, store=store, log=False, ensure_success=False)
    finally:
        jf_log.removeHandler(handler)
        jf_log.propagate = True


def report(run: Plan, store) -> list[dict]:
    """Summary rows of the run's results (this spec's materials and protocols)."""
    from .summary import summarize

    rows = []
    criteria = {
        "output.structure_id": {"$in": list(run.ids)},
        "output.settings_key": {"$in": list(run.keys.values())},
    }
    for doc in store.query(criteria, properties=["output"]):
        out = doc["output"]
        if isinstance(out, dict):
            rows.append(summarize(out))
    rows.sort(key=lambda r: (str(r.get("formula")), str(r.get("property"))))
    return rows
