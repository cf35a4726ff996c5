"""``sevenomni`` with the workflow commands: ``run``, ``submit``, ``query`` and
``export``.

The core commands (``models``, ``eval``) come from :mod:`sevenomni_core.cli`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from sevenomni_core.cli.main import build_parser as core_parser
from sevenomni_core.cli.main import dispatch

__all__ = ["main"]

DEFAULT_STORE = "results"


def _where(store: str | None, spec, base: Path) -> tuple[str, Path]:
    """The store location (CLI over spec over default) and the results folder."""
    where = store or spec.store or DEFAULT_STORE
    if store is None and spec.store and "://" not in spec.store:
        where = str(base / spec.store)  # relative to the spec file
    is_folder = "://" not in where and not where.endswith((".yaml", ".yml", ".json"))
    return where, Path(where) if is_folder else Path(DEFAULT_STORE)


#: Above this many rows, ``run`` prints only what did not complete.
MAX_ROWS = 100


def _potential(settings, spec_path: str | Path):
    """The spec's model and task, loaded; a bad device names the spec's key.

    Raises
    ------
    SpecError
        For a device name that is not one, or one this machine lacks, as
        ``spec.yaml:LINE: device: 'gpu0' is not a device name; use ...``.
    """
    from sevenomni_core.model.potential import resolve_device

    from .spec import SpecError, key_line

    try:
        resolve_device(settings.device)
    except ValueError as err:
        why = str(err).removeprefix("device ")
        raise SpecError(f"{key_line(spec_path, 'device')}: device: {why}") from None
    return settings.potential(build=False)  # built when a job computes


def _task_settings(spec, spec_path) -> list:
    """The model settings of each task of the spec; a list of tasks for a
    single-task model is a spec error naming ``task``."""
    from .spec import SpecError, key_line

    tasks = spec.tasks()
    if len(tasks) > 1:
        untasked = dataclasses.replace(spec.model_settings(), task=None)
        pot, _ = _potential(untasked, spec_path)
        if not pot.tasks:
            raise SpecError(
                f"{key_line(spec_path, 'task')}: task: {pot.name} is a "
                f"single-task model; a list of tasks {tasks} needs a multi-task "
                "model (7net-mf-0, 7net-omni)"
            )
    return [spec.model_settings(t) for t in tasks]


def _cmd_run(args: argparse.Namespace) -> int:
    from .run import execute, open_store, plan, report, tally
    from .spec import load_spec
    from .summary import format_rows

    spec, base = load_spec(args.spec)
    where, folder = _where(args.store, spec, base)
    settings = _task_settings(spec, args.spec)
    for each in settings:
        pot, task = _potential(each, args.spec)
        print(
            f"model {pot.name} (task {task or '-'}, sha256 {pot.sha256[:12]}, "
            f"{each.dtype}, {pot.device}"
            + (f", dispersion {spec.dispersion}" if spec.dispersion else "")
            + (f", backend {pot.backend}" if pot.backend != "e3nn" else "")
            + f"); results in {where}"
        )
    store = open_store(where)
    run = plan(spec, base, store, settings, str(folder / "plots"), args.retry_failed)
    kept = (
        f", {run.kept_failures} failures kept (not transient; --retry-failed "
        "recomputes them)"
        if run.kept_failures
        else ""
    )
    print(
        f"{run.n_materials} materials x {run.n_properties} properties, "
        f"{run.n_frameworks} frameworks: {len(run.planned)} calculations, "
        f"{run.reused} results reused, {run.to_compute} to compute "
        f"({run.to_relax} structures to relax) in {run.n_jobs} jobs "
        f"(planned in {run.seconds:.2f} s){kept}"
    )
    execute(run, store)
    rows = report(run, store)
    counts = tally(run, rows)
    shown = (
        rows
        if len(rows) <= MAX_ROWS
        else [r for r in rows if r.get("state") != "completed"][:MAX_ROWS]
    )
    if shown:
        print()
        print(format_rows(shown, "table"))
    if len(shown) < len(rows):
        print(f"\n({len(rows) - len(shown)} more rows: see `sevenomni query`)")
    if len(settings) > 1:
        print()
        print(
            format_rows(rows, "tasks")
            if len(rows) <= MAX_ROWS
            else "each task's values side by side: sevenomni query --format tasks"
        )
    print(
        "\n{completed} completed, {failed} failed, {skipped} skipped, "
        "{missing} missing; {unconverged} relaxations unconverged".format(**counts)
    )
    bad = counts["failed"] + counts["skipped"] + counts["missing"]
    if bad or counts["unconverged"]:
        print(
            "not all calculations succeeded: see the error column. A rerun "
            "recomputes missing results and transient failures (out of memory, "
            "a timeout, a lost connection); it keeps failures a rerun cannot fix "
            "(bad input, a guard, divergence, no convergence, an error inside "
            "a calculation): change the input or settings, or pass "
            "--retry-failed"
        )
    return 1 if bad or counts["unconverged"] else 0


def _cluster(spec, args: argparse.Namespace):
    """The spec's cluster section with the worker options of the command line."""
    gpu = args.gpu_worker or args.worker
    cpu = args.cpu_worker
    cluster = spec.cluster.model_copy(deep=True)
    key = "fworker" if args.engine == "fireworks" else "worker"
    if gpu:
        setattr(cluster.gpu, key, gpu)
    if cpu:
        setattr(cluster.cpu, key, cpu)
    if key == "worker" and cluster.cpu.worker is None:
        cluster.cpu.worker = cluster.gpu.worker  # one worker unless told otherwise
    return cluster


def _cmd_submit(args: argparse.Namespace) -> int:
    from .run import open_store, plan, record_inputs
    from .spec import load_spec
    from .submit.fireworks import SubmitError

    spec, base = load_spec(args.spec)
    cluster = _cluster(spec, args)
    if args.engine == "jobflow-remote":
        from .submit.jobflow_remote import project_job_store, submit_to_jobflow_remote

        if args.launchpad:
            raise SubmitError("--launchpad goes with --engine fireworks")
        if args.store:
            raise SubmitError(
                "--store goes with --engine fireworks: with jobflow-remote the "
                "results go to the project's jobstore"
            )
        store = project_job_store(args.project)  # checks the project first
        where, folder = f"the jobstore of project {args.project}", Path(DEFAULT_STORE)
    else:
        from .submit.fireworks import launchpad_from_file, submit_to_fireworks

        if args.project:
            raise SubmitError("--project goes with --engine jobflow-remote")
        launchpad = launchpad_from_file(args.launchpad)
        where, folder = _where(args.store, spec, base)
        store = open_store(where)
    plots = Path(args.plots) if args.plots else folder.resolve() / "plots"
    settings = _task_settings(spec, args.spec)
    for each in settings:
        pot, task = _potential(each, args.spec)
        print(
            f"model {pot.name} (task {task or '-'}, sha256 {pot.sha256[:12]}, "
            f"{each.dtype}, device {each.device} on the workers); "
            f"results in {where}"
        )
    run = plan(spec, base, store, settings, str(plots))
    print(
        f"{run.n_materials} materials x {run.n_properties} properties, "
        f"{run.n_frameworks} frameworks: "
        f"{run.reused} results reused, {run.n_jobs} jobs to submit"
    )
    record_inputs(run, store)
    if not run.n_jobs:
        return 0
    if args.engine == "jobflow-remote":
        ids = submit_to_jobflow_remote(run.flow, args.project, cluster)
        print(f"submitted {len(ids)} jobs to jobflow-remote project {args.project}")
    else:
        fws = submit_to_fireworks(run.flow, store, launchpad, cluster)
        print(
            f"submitted {len(fws)} fireworks (ids {min(fws)}-{max(fws)}) to "
            f"{launchpad.host}/{launchpad.name}"
        )
    return 0


class _Refused(Exception):
    """A command-line input refused with a message (exit status 2)."""


def _select(args: argparse.Namespace, fields: list[str] | None = None):
    """The stored results that ``args.filter`` selects in ``args.store`` (or
    ``args.project``'s jobstore), and whether a filter was given.

    Raises
    ------
    _Refused
        For a filter that is not JSON/YAML, not a mapping, or refused by the
        store, an unknown field, or no store there.
    """
    from .reader import check_fields, open_results
    from .summary import read_filter, to_mongo_filter

    user = {}
    if args.filter:
        try:
            user = read_filter(args.filter)
        except yaml.YAMLError as err:
            raise _Refused(f"filter {args.filter!r} is {_yaml_problem(err)}") from None
        if not isinstance(user, dict):
            raise _Refused(
                f"filter {args.filter!r} is not a mapping; give one like "
                '\'{"formula": "Si"}\''
            )
    try:
        to_mongo_filter(user or {})
    except ValueError as err:
        raise _Refused(f"filter {args.filter!r}: {err}") from None
    try:
        check_fields(fields or [])
    except ValueError as err:
        raise _Refused(f"--fields: {err}") from None
    try:
        if args.project:
            from .submit.jobflow_remote import project_job_store

            results = open_results(project_job_store(args.project))
        else:
            results = open_results(args.store)
    except (FileNotFoundError, ValueError) as err:
        raise _Refused(str(err)) from None
    try:
        found = list(results.find(user, fields=fields))
    except Exception as err:  # the database's own check of the filter
        if not _rejected_filter(err):
            raise
        why = " ".join(str(err).split()) or type(err).__name__
        raise _Refused(
            f"filter {args.filter!r}: the store rejected it: {why}"
        ) from None
    return found, bool(user)


def _nothing(args: argparse.Namespace, filtered: bool) -> str:
    """What to say when a filter selects nothing."""
    where = f"project {args.project}'s jobstore" if args.project else args.store
    what = f"match {args.filter}" if filtered else "are stored"
    return f"no results {what} in {where}"


def _cmd_query(args: argparse.Namespace) -> int:
    from .summary import field_rows, format_fields, format_rows, summarize

    fields = None
    if args.fields is not None:
        fields = list(dict.fromkeys(f.strip() for f in args.fields.split(",")))
        fields = [f for f in fields if f]
        if not fields or args.format == "tasks":
            print(
                "error: --fields takes field names, e.g. --fields "
                "volume,heat_capacity, with --format table, csv or json",
                file=sys.stderr,
            )
            return 2
    try:
        found, filtered = _select(args, fields)
    except _Refused as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not found:
        message = _nothing(args, filtered)
        if args.format == "table":
            print(message)
            return 0
        print(message, file=sys.stderr)  # stdout stays valid CSV/JSON
    if fields is not None:
        print(format_fields(field_rows(found, fields), fields, args.format))
        return 0
    rows = [summarize(r) for r in found]
    rows.sort(key=lambda r: (str(r.get("label")), str(r.get("property"))))
    print(format_rows(rows, args.format))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_structures

    try:
        found, filtered = _select(args)
    except _Refused as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not found:
        print(_nothing(args, filtered) + ": nothing written")
        return 0
    written = export_structures(found, args.to, args.format)
    if not written:
        print(f"the {len(found)} results selected hold no structures: nothing written")
        return 0
    print(f"{len(written)} files of {len(found)} results written to {args.to}")
    return 0


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line on what is wrong with a filter's JSON/YAML text."""
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if not problem:
        return "not valid JSON/YAML: " + " ".join(str(err).split())
    where = f" at column {mark.column + 1}" if mark is not None else ""
    if mark is not None and mark.line:
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
    return f"not valid JSON/YAML: {problem}{where}"


def _rejected_filter(err: Exception) -> bool:
    """Whether ``err`` is MontyDB's or MongoDB's refusal of a query filter."""
    kinds: list[type] = []
    try:
        from montydb.errors import OperationFailure as MontyFailure

        kinds.append(MontyFailure)
    except ImportError:
        pass
    try:
        from pymongo.errors import OperationFailure

        kinds.append(OperationFailure)
    except ImportError:
        pass
    return isinstance(err, tuple(kinds))


def build_parser() -> argparse.ArgumentParser:
    """The full ``sevenomni`` parser: core commands plus run, submit, query
    and export."""
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
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="recompute stored failures that a rerun cannot fix by itself "
        "(bad input, divergence, no convergence); transient ones (out of "
        "memory, a timeout, a lost connection) are always retried",
    )
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser(
        "submit",
        help="submit a screening spec to FireWorks or jobflow-remote",
        description="Plan like `run` (stored results are reused), then submit "
        "the jobs: model jobs to GPU workers, the rest to CPU workers.",
    )
    p.add_argument("spec", help="the YAML spec, e.g. workflows/cluster/screening.yaml")
    p.add_argument(
        "--engine",
        required=True,
        choices=["fireworks", "jobflow-remote"],
        help="the workflow manager that runs the jobs",
    )
    p.add_argument(
        "--launchpad",
        default=None,
        help="fireworks: my_launchpad.yaml (default: FireWorks' configured one)",
    )
    p.add_argument(
        "--store",
        default=None,
        help="fireworks: results store, as for run; jobflow-remote uses the "
        "project's jobstore",
    )
    p.add_argument("--project", default=None, help="jobflow-remote project name")
    p.add_argument(
        "--worker",
        default=None,
        help="worker of model jobs: a jobflow-remote worker (also taking the "
        "CPU jobs unless --cpu-worker is given) or a FireWorks fworker name",
    )
    p.add_argument("--gpu-worker", default=None, help="the same as --worker")
    p.add_argument("--cpu-worker", default=None, help="worker for CPU jobs")
    p.add_argument(
        "--plots",
        default=None,
        help="folder the workers write plots to (default: <results>/plots, "
        "absolute, so a shared file system is assumed)",
    )
    p.set_defaults(func=_cmd_submit)
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
    p.add_argument(
        "--project",
        default=None,
        help="read the jobstore of this jobflow-remote project instead",
    )
    p.add_argument(
        "--format",
        choices=["table", "csv", "json", "tasks"],
        default="table",
        help="tasks: each task's values side by side, with their difference",
    )
    p.add_argument(
        "--fields",
        default=None,
        help="comma-separated stored fields to print instead of the summary "
        "columns, arrays and bulky ones included, e.g. volume,heat_capacity "
        "(with --format json: every value in full)",
    )
    p.set_defaults(func=_cmd_query)
    p = sub.add_parser(
        "export",
        help="write the structures of stored results to files",
        description="Write every structure of the documents a filter selects "
        "(relaxed cells, relaxed slabs, adsorbate configurations, NEB images, "
        "Widom's top poses), named <label>_<property>_<field>, each file "
        "carrying the document's reuse key.",
    )
    p.add_argument(
        "filter",
        nargs="?",
        default=None,
        help='Mongo-style filter as for query, e.g. \'{"property": "relax"}\'',
    )
    p.add_argument("--to", required=True, help="folder to write to (created)")
    p.add_argument(
        "--format",
        choices=["extxyz", "cif", "poscar", "json"],
        default="extxyz",
        help="file format; a list (NEB images, placements) is one extxyz or "
        "JSON file, numbered CIF/POSCAR files",
    )
    p.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help="results folder, mongodb:// URI or jobflow store file",
    )
    p.add_argument(
        "--project",
        default=None,
        help="read the jobstore of this jobflow-remote project instead",
    )
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        return dispatch(build_parser(), argv)
    except BrokenPipeError:  # output piped to e.g. `head`, which closed early
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error at exit
        return 1


if __name__ == "__main__":
    sys.exit(main())
