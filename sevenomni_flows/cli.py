"""``sevenomni`` with the workflow commands: ``run`` and ``query``.

The core commands (``models``, ``eval``) come from :mod:`sevenomni_core.cli`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import yaml

from sevenomni_core.cli.main import build_parser as core_parser
from sevenomni_core.cli.main import dispatch

__all__ = ["main"]

DEFAULT_STORE = "results"


def _open_store(where: str | Path):
    """A JobStore from a folder (embedded), a MongoDB URI, or a jobflow store file."""
    from jobflow import JobStore

    from .stores import embedded_job_store, mongo_job_store

    text = str(where)
    if text.startswith(("mongodb://", "mongodb+srv://")):
        store = mongo_job_store(text)
    elif text.endswith((".yaml", ".yml", ".json")):
        store = JobStore.from_file(text)
    else:
        store = embedded_job_store(where)
    store.connect()
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


def _cmd_run(args: argparse.Namespace) -> int:
    from jobflow import Flow, run_locally

    from .flows import ScreeningMaker
    from .jobs import (
        ElasticMaker,
        EosMaker,
        ModelSettings,
        PhononMaker,
        RelaxMaker,
        StaticMaker,
    )
    from .jobs.base import maker_settings, record, settings_key
    from .schemas import structure_id
    from .spec import load_spec, read_structures
    from .summary import format_rows, summarize

    spec, base = load_spec(args.spec)
    where = args.store or spec.store or DEFAULT_STORE
    if args.store is None and spec.store and "://" not in spec.store:
        where = str(base / spec.store)  # relative to the spec file
    is_folder = "://" not in where and not where.endswith((".yaml", ".yml", ".json"))
    folder = Path(where) if is_folder else Path(DEFAULT_STORE)
    settings = ModelSettings(spec.model, spec.task, spec.device, spec.dtype)
    pot, task = settings.potential()
    print(
        f"model {pot.name} (task {task or '-'}, sha256 {pot.sha256[:12]}, "
        f"{settings.dtype}, {pot.device}); results in {where}"
    )
    plots = str(folder / "plots")
    from .jobs.adsorption import MofAdsorptionMaker, SlabAdsorptionMaker

    screening = ScreeningMaker(
        properties=list(dict.fromkeys(["relax", *spec.properties])),
        adsorption_maker=SlabAdsorptionMaker(
            **spec.adsorption.model_dump(), relax_bulk=False, plot_dir=plots
        ),
        relax_maker=RelaxMaker(**spec.relax.model_dump()),
        static_maker=StaticMaker(),
        elastic_maker=ElasticMaker(**spec.elastic.model_dump()),
        phonon_maker=PhononMaker(**spec.phonon.model_dump(), plot_dir=plots),
        eos_maker=EosMaker(**spec.eos.model_dump(), plot_dir=plots),
    ).with_settings(settings)
    makers = screening.makers()
    keys = {
        p: settings_key(p, pot.sha256, task, maker_settings(makers[p]))
        for p in screening.properties
    }
    n_ads = len(spec.adsorption.miller_indices) * len(spec.adsorption.adsorbates)
    store = _open_store(where)
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
    ids = {structure_id(s): label for label, s in materials}
    for doc in failures:  # stored, so that query shows them too
        ids[doc.structure_id] = doc.formula
        keys[f"input {doc.formula}"] = doc.settings_key
        flow = Flow([*([flow] if flow.jobs else []), record(doc)], name="sevenomni run")
    for entry in spec.frameworks:
        path = str(base / entry.file)
        label = entry.name or Path(entry.file).stem
        mof = MofAdsorptionMaker(
            **spec.mof.model_dump(),
            guests=entry.guests,
            plot_dir=plots,
            settings=settings,
        )
        key = settings_key("adsorption", pot.sha256, task, maker_settings(mof))
        keys[f"mof {label}"] = key
        try:
            from pymatgen.io.ase import AseAtomsAdaptor

            from .adsorption.mofs import read_framework

            framework = read_framework(path, spec.mof.min_length)
            sid = structure_id(AseAtomsAdaptor.get_structure(framework))
            ids[sid] = label
            if _count_stored(store, sid, key) >= len(entry.guests):
                reused += 1
                continue
        except ValueError:
            ids["unknown"] = label  # the job reports the error
        parts = [flow] if flow.jobs else []
        flow = Flow([*parts, mof.make(path, label)], name="sevenomni run")
    n_jobs = sum(1 for _ in flow.iterflow()) if flow.jobs else 0
    print(
        f"{len(materials)} materials x {len(screening.properties)} properties, "
        f"{len(spec.frameworks)} frameworks: "
        f"{reused} results reused, {n_jobs} jobs to run"
    )
    if n_jobs:
        handler = _Progress(n_jobs)
        jf_log = logging.getLogger("jobflow")
        jf_log.addHandler(handler)
        jf_log.setLevel(logging.INFO)
        jf_log.propagate = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                warnings.filterwarnings("ignore", "Some jobs are not connected")
                run_locally(flow, store=store, log=False, ensure_success=False)
        finally:
            jf_log.removeHandler(handler)
            jf_log.propagate = True
    rows = []
    for doc in store.query(
        {
            "output.structure_id": {"$in": list(ids)},
            "output.settings_key": {"$in": list(keys.values())},
        },
        properties=["output"],
    ):
        out = doc["output"]
        if isinstance(out, list):
            continue
        rows.append(summarize(out))
    rows.sort(key=lambda r: (str(r.get("formula")), str(r.get("property"))))
    print()
    print(format_rows(rows, "table"))
    bad = [r for r in rows if r.get("state") != "completed"]
    if bad:
        print(f"\n{len(bad)} failed: see the error column; other results are stored.")
    return 1 if bad else 0


def _cmd_query(args: argparse.Namespace) -> int:
    from .summary import format_rows, summarize, to_mongo_filter

    user = {}
    if args.filter:
        try:
            user = yaml.safe_load(args.filter)
        except yaml.YAMLError as err:
            print(f"error: filter is not JSON/YAML: {err}", file=sys.stderr)
            return 2
        if not isinstance(user, dict):
            print(
                'error: the filter must be a mapping, e.g. \'{"formula": "Si"}\'',
                file=sys.stderr,
            )
            return 2
    folder = Path(args.store)
    if "://" not in args.store and not folder.exists():
        print(f"error: no results store at {folder}", file=sys.stderr)
        return 2
    store = _open_store(args.store)
    rows = []
    for doc in store.query(to_mongo_filter(user), properties=["output"]):
        out = doc.get("output")
        if isinstance(out, dict) and "property" in out:
            rows.append(summarize(out))
    rows.sort(key=lambda r: (str(r.get("formula")), str(r.get("property"))))
    print(format_rows(rows, args.format))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full ``sevenomni`` parser: core commands plus run and query."""
    parser = core_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.add_parser("run", help="run a screening spec (YAML) locally")
    p.add_argument("spec", help="the YAML spec, e.g. workflows/quickstart.yaml")
    p.add_argument(
        "--store",
        default=None,
        help="results folder (embedded store), mongodb:// URI or jobflow store "
        f"file (default: the spec's store, else ./{DEFAULT_STORE})",
    )
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("query", help="query stored results with a Mongo-style filter")
    p.add_argument(
        "filter",
        nargs="?",
        default=None,
        help='e.g. \'{"property": "elastic", "bulk_modulus_vrh": {"$gt": 100}}\'',
    )
    p.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help="results folder, mongodb:// URI or jobflow store file",
    )
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=_cmd_query)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
