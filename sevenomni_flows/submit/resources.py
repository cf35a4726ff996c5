"""Where each job of a screening runs: model work on GPUs, the rest on CPUs.

Every job of a flow is one of two kinds:

``"model"``
    Evaluates the network: relaxations, single points, strained cells
    (elastic, EOS), displaced supercells (phonons), adsorption candidates.
    The fits these jobs end with (elastic tensor, EOS, force constants) run
    inside them, so they are model jobs too.  They go to GPU workers.
``"cpu"``
    Jobs that never load the model, named in :data:`CPU_FUNCTIONS`.  A
    screening has none: its batched jobs write one document per material
    themselves, and the plan stores input failures.  The route stays for
    such jobs that users add to their flows.

:func:`route` writes the destination of each job into its
``config.manager_config``, which both engines read: FireWorks copies it
into the Firework spec (``_category``, ``_fworker``), jobflow-remote reads
``worker``, ``exec_config`` and ``resources`` from it.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from jobflow import Flow, Job
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CPU",
    "CPU_FUNCTIONS",
    "MODEL",
    "ClusterSettings",
    "Route",
    "job_kind",
    "route",
]

MODEL: Final[str] = "model"
CPU: Final[str] = "cpu"

#: Job functions that never touch the model (every other job is a model job).
CPU_FUNCTIONS: Final[set[str]] = set()

Engine = Literal["fireworks", "jobflow-remote"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Route(_Strict):
    """Where one kind of job runs, for either engine."""

    category: str | None = Field(
        None, description="FireWorks _category: fworkers with it pull these jobs"
    )
    fworker: str | None = Field(
        None, description="FireWorks _fworker: only the fworker of this name"
    )
    worker: str | None = Field(
        None, description="jobflow-remote worker name in the project"
    )
    exec_config: str | None = Field(
        None, description="jobflow-remote exec_config name (modules, conda, ...)"
    )
    resources: dict[str, Any] | None = Field(
        None,
        description="jobflow-remote resources for the queue (qtoolkit keys, "
        "e.g. {gpus_per_job: 1, time_limit: 3600})",
    )


class ClusterSettings(_Strict):
    """Routing of the two job kinds, and how big a batched job is."""

    gpu: Route = Field(
        default_factory=lambda: Route(category="gpu"),
        description="Model jobs (relax, static, elastic, phonon, eos, adsorption)",
    )
    cpu: Route = Field(
        default_factory=lambda: Route(category="cpu"),
        description="Jobs without the model (functions in CPU_FUNCTIONS)",
    )
    structures_per_job: int | None = Field(
        None,
        ge=1,
        description="Most structures in one batched job (None: all); "
        "inside a job, batches are sized to the GPU's free memory",
    )

    def for_kind(self, kind: str) -> Route:
        """The route of ``"model"`` or ``"cpu"`` jobs."""
        return self.gpu if kind == MODEL else self.cpu


def job_kind(job: Job) -> str:
    """``"model"`` or ``"cpu"``, from the function the job runs.

    >>> from sevenomni_flows import StaticMaker
    >>> job_kind(StaticMaker().make([]))
    'model'
    """
    function = job.function
    name = getattr(function, "__name__", "")
    if getattr(function, "__self__", None) is not None:  # a Maker's make
        return MODEL
    return CPU if name in CPU_FUNCTIONS else MODEL


def manager_config(route_: Route, engine: Engine) -> dict[str, Any]:
    """The ``manager_config`` entries one engine reads, from a route."""
    if engine == "fireworks":
        pairs = {"_category": route_.category, "_fworker": route_.fworker}
    elif engine == "jobflow-remote":
        pairs = {
            "worker": route_.worker,
            "exec_config": route_.exec_config,
            "resources": route_.resources,
        }
    else:
        raise ValueError(
            f"unknown engine {engine!r}; choose 'fireworks' or 'jobflow-remote'"
        )
    return {k: v for k, v in pairs.items() if v is not None}


def route(flow: Flow | Job, cluster: ClusterSettings, engine: Engine) -> dict[str, int]:
    """Set each job's destination in place; returns how many jobs of each kind.

    Parameters
    ----------
    flow : Flow or Job
        The flow to submit (nested flows included).
    cluster : ClusterSettings
        Routes of model and CPU jobs.
    engine : {"fireworks", "jobflow-remote"}
        Which engine's keys to write.
    """
    jobs = [flow] if isinstance(flow, Job) else [j for j, _ in flow.iterflow()]
    counts = {MODEL: 0, CPU: 0}
    for job in jobs:
        kind = job_kind(job)
        counts[kind] += 1
        config = manager_config(cluster.for_kind(kind), engine)
        job.config.manager_config = {**job.config.manager_config, **config}
    return counts
