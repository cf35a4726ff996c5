"""Running a plan locally, with the jobs' own progress lines."""

from __future__ import annotations

import logging
import time
import warnings

from jobflow import run_locally

from ..jobs.calculation import JOB_DONE
from .inputs import record_inputs, record_names
from .plan import Plan

__all__ = ["execute"]


class _Progress(logging.Handler):
    """Prints the jobs' own progress lines and a line as each job finishes.

    Jobs report through the ``sevenomni.progress`` logger; a job that has
    stored its documents says so with :data:`~sevenomni_flows.jobs.
    calculation.JOB_DONE` (a job that crashed before that leaves its
    calculations ``missing`` in the final count).
    """

    def __init__(self, total: int):
        super().__init__(logging.INFO)
        self.total = total
        self.done = 0
        self.start = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        elapsed = time.perf_counter() - self.start
        if getattr(record, JOB_DONE, None) is not None:
            self.done += 1
            print(
                f"  [job {self.done}/{self.total}] {record.getMessage()} "
                f"({elapsed:.1f} s)",
                flush=True,
            )
        else:
            print(f"  {record.getMessage()}", flush=True)


def execute(run: Plan, store) -> None:
    """Store input failures, then run the planned jobs locally, with progress."""
    record_inputs(run, store)
    if not run.n_jobs:
        record_names(run, store)
        return
    handler = _Progress(run.n_jobs)
    loggers = [logging.getLogger("sevenomni.progress")]
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
    record_names(run, store)
