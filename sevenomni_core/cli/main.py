"""The ``sevenomni`` command line (core commands: ``models``, ``eval``, ``train``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _cmd_models(args: argparse.Namespace) -> int:
    from ..model.config import ModelConfig
    from ..model.header import CheckpointError, read_config
    from ..model.registry import MODELS, auto_name, available_models, model_dirs

    present = available_models()
    rows = []
    for name, spec in MODELS.items():
        path = present.get(name)
        tasks = ""
        if path is not None:
            try:
                cfg = ModelConfig.from_sevenn(read_config(path))
                tasks = ", ".join(cfg.tasks) or "(single task)"
            except (CheckpointError, ValueError) as err:
                tasks = f"unreadable: {err}"
        rows.append(
            {
                "model": name,
                "present": path is not None,
                "default_task": spec.default_task,
                "tasks": tasks,
                "path": str(path) if path else None,
            }
        )
    if args.format == "json":
        print(json.dumps({"auto": auto_name(), "models": rows}, indent=2))
        return 0
    print("Models folders searched: " + ", ".join(str(d) for d in model_dirs()))
    print(f"{'model':<18}{'offline':<9}{'default task':<14}tasks")
    for row in rows:
        mark = "yes" if row["present"] else "no"
        print(
            f"{row['model']:<18}{mark:<9}{row['default_task'] or '-':<14}{row['tasks']}"
        )
    print(f"'auto' resolves to: {auto_name()}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from ..calculator import SevenOmniCalculator
    from ..io import read_frames

    calc = SevenOmniCalculator(
        args.model, task=args.task, device=args.device, dtype=args.dtype
    )
    status = 0
    results = []
    for path in args.structures:
        for frame in read_frames(path, label=str(path)):
            if frame.error is not None:  # unreadable or disordered: fails alone
                print(f"error: {frame.error}", file=sys.stderr)
                status = 1
                continue
            atoms, label = frame.atoms, frame.label
            atoms.calc = calc
            try:
                energy = atoms.get_potential_energy()
                forces = atoms.get_forces()
                stress = atoms.get_stress() if "stress" in calc.results else None
            except Exception as err:  # one bad structure fails alone
                print(f"error: {label}: {err}", file=sys.stderr)
                status = 1
                continue
            results.append(
                {
                    "structure": label,
                    "formula": atoms.get_chemical_formula(),
                    "energy_eV": energy,
                    "energy_per_atom_eV": energy / len(atoms),
                    "max_force_eV_per_A": float(np.linalg.norm(forces, axis=1).max()),
                    "forces_eV_per_A": forces.tolist(),
                    "stress_eV_per_A3": None if stress is None else stress.tolist(),
                }
            )
    meta = calc.potential.describe(calc.task)
    if args.format == "json":
        print(json.dumps({"model": meta, "results": results}, indent=2))
        return status
    print(
        f"model {meta['model']} (task {meta['task'] or '-'}, {meta['dtype']}, "
        f"{meta['device']}, sha256 {meta['sha256'][:12]}) from {meta['checkpoint']}"
    )
    for r in results:
        print(f"\n{r['structure']}  {r['formula']}")
        print(
            f"  energy        {r['energy_eV']:.6f} eV  "
            f"({r['energy_per_atom_eV']:.6f} eV/atom)"
        )
        print(f"  max |force|   {r['max_force_eV_per_A']:.6f} eV/Å")
        if r["stress_eV_per_A3"] is not None:
            gpa = np.array(r["stress_eV_per_A3"]) * 160.21766208
            print(
                "  stress (GPa)  xx yy zz yz xz xy = "
                + " ".join(f"{v:.4f}" for v in gpa)
            )
    return status


def _cmd_train(args: argparse.Namespace) -> int:
    from ..train import train

    result = train(args.config, restart=args.restart, stop_after=args.stop_after)
    if result.history:
        print(f"best model: {result.best}\nlast checkpoint: {result.last}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sevenomni``."""
    parser = argparse.ArgumentParser(
        prog="sevenomni",
        description="SevenNet-Omni screening: models, evaluation and workflows.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("models", help="list the models and tasks available offline")
    p.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="json: with the models' paths and what 'auto' resolves to",
    )
    p.set_defaults(func=_cmd_models)
    p = sub.add_parser("eval", help="energy, forces and stress of structure files")
    p.add_argument(
        "structures", nargs="+", help="files ASE can read (CIF, POSCAR, extxyz, ...)"
    )
    p.add_argument(
        "--model",
        default="auto",
        help="registry name (see `sevenomni models`) or checkpoint path; auto: "
        "the best model available offline",
    )
    p.add_argument(
        "--task", default=None, help="task (fidelity); default: the model's own"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float64"],
        help="precision of the evaluation",
    )
    p.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="json: also every force and the stress in eV/Å³ (the table "
        "gives energy, max force and stress in GPa)",
    )
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser(
        "train",
        help="train or fine-tune a model from a YAML config (resumes when rerun)",
    )
    p.add_argument(
        "config", help="the YAML config, e.g. workflows/training/multitask.yaml"
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="start afresh even if the output folder holds a checkpoint",
    )
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="EPOCH",
        help="stop after this epoch (rerun to continue)",
    )
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return dispatch(build_parser(), argv)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, set up logging and run the chosen command; errors become status 2."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
