"""``sevenomni`` with the workflow commands: ``run`` and ``query``.

The core commands (``models``, ``eval``) come from :mod:`sevenomni_core.cli`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from sevenomni_core.cli.main import build_parser as core_parser
from sevenomni_core.cli.main import dispatch

__all__ = ["main"]

DEFAULT_STORE = "results"


def _cmd_run(args: argparse.Namespace) -> int:
    from .jobs import ModelSettings
    from .run import execute, open_store, plan, report
    from .spec import load_spec
    from .summary import format_rows

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
    store = open_store(where)
    run = plan(spec, base, store, settings, str(folder / "plots"))
    print(
        f"{run.n_materials} materials x {run.n_properties} properties, "
        f"{len(spec.frameworks)} frameworks: "
        f"{run.reused} results reused, {run.n_jobs} jobs to run"
    )
    execute(run, store)
    rows = report(run, store)
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
    from .run import open_store

    store = open_store(args.store)
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
