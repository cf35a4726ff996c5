"""Submitting a screening flow to a jobflow-remote project.

jobflow-remote reads ``worker``, ``exec_config`` and ``resources`` from each
job's ``config.manager_config``, which
:func:`~sevenomni_flows.submit.resources.route` fills per job kind: model jobs
go to the GPU worker with its exec config (CUDA modules, environment) and
resources (e.g. ``gpus_per_job: 1``), the rest to the CPU worker.  Outputs go
to the project's jobstore.  A job runs in its own ``jf execution run``
process, so the model is loaded once per job there; batch many structures
into a job (``cluster.structures_per_job``) to make the load worth it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .fireworks import SubmitError
from .resources import ClusterSettings, route

if TYPE_CHECKING:
    from jobflow import Flow, JobStore

__all__ = ["project_job_store", "shell_safe", "submit_to_jobflow_remote"]


def _project(name: str | None):
    try:
        from jobflow_remote import ConfigManager
        from jobflow_remote.config.base import ConfigError
    except ImportError as err:
        raise SubmitError(
            "--engine jobflow-remote needs jobflow-remote: "
            "pip install 'sevenomni[cluster]'"
        ) from err
    if not name:
        raise SubmitError("--engine jobflow-remote needs --project NAME")
    manager = ConfigManager()
    if name not in manager.projects:
        known = ", ".join(sorted(manager.projects)) or "none"
        raise SubmitError(
            f"no jobflow-remote project {name!r} (projects: {known}; "
            f"they live in {manager.projects_folder})"
        )
    try:
        return manager.get_project(name)
    except ConfigError as err:
        raise SubmitError(f"jobflow-remote project {name!r}: {err}") from err


def shell_safe(name: str) -> str:
    """A job name without the characters that break a queue script.

    jobflow-remote writes the name unquoted into the script (``echo NAME``
    with the shell scheduler), so ``relax (2 structures)`` is a bash syntax
    error there.

    >>> shell_safe("adsorption Cu(111) CO")
    'adsorption Cu111 CO'
    """
    return re.sub(r"[^\w .,+-]", "", name)


def project_job_store(project: str) -> JobStore:
    """The connected output store of a jobflow-remote project.

    Raises
    ------
    SubmitError
        If the project's jobstore has no ``results`` store (one document per
        calculation; see ``workflows/cluster/jobflow_remote_project.yaml``).
    """
    store = _project(project).get_jobstore()
    if "results" not in store.additional_stores:
        raise SubmitError(
            f"the jobstore of jobflow-remote project {project!r} has no "
            "additional store 'results': add one keyed by 'key' (see "
            "workflows/cluster/jobflow_remote_project.yaml)"
        )
    store.connect()
    return store


def submit_to_jobflow_remote(
    flow: Flow, project: str, cluster: ClusterSettings
) -> list[str]:
    """Add the flow to the project's queue; returns the db ids of its jobs.

    Raises
    ------
    SubmitError
        If the project is unknown, no GPU worker is named, or a named worker
        or exec config is not in the project.
    """
    proj = _project(project)
    for kind, r in (("gpu", cluster.gpu), ("cpu", cluster.cpu)):
        if r.worker is not None and r.worker not in proj.workers:
            known = ", ".join(sorted(proj.workers)) or "none"
            raise SubmitError(
                f"unknown {kind} worker {r.worker!r} in project {project!r} "
                f"(workers: {known})"
            )
        if r.exec_config is not None and r.exec_config not in proj.exec_config:
            known = ", ".join(sorted(proj.exec_config)) or "none"
            raise SubmitError(
                f"unknown {kind} exec_config {r.exec_config!r} in project "
                f"{project!r} (exec_config: {known})"
            )
    if cluster.gpu.worker is None:
        raise SubmitError(
            "no GPU worker: pass --worker (or --gpu-worker), or set "
            "cluster.gpu.worker in the spec"
        )
    from jobflow_remote import submit_flow

    route(flow, cluster, "jobflow-remote")
    for job, _ in flow.iterflow():
        job.name = shell_safe(job.name)
    return submit_flow(flow, worker=cluster.gpu.worker, project=project)
