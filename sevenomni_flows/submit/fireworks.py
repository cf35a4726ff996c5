"""Submitting a screening flow to a FireWorks LaunchPad.

Each jobflow Job becomes one Firework (:func:`jobflow.managers.fireworks.
flow_to_workflow`); its ``_category`` and ``_fworker`` come from
:func:`~sevenomni_flows.submit.resources.route`.  Workers pull them with
``rlaunch -w my_fworker_gpu.yaml rapidfire`` (or ``qlaunch`` through a
qadapter).  ``rlaunch rapidfire`` runs its Fireworks one after another in one
Python process, so the model is loaded once per worker process and reused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .resources import ClusterSettings, route

if TYPE_CHECKING:
    from fireworks import LaunchPad
    from jobflow import Flow, JobStore

__all__ = ["SubmitError", "launchpad_from_file", "submit_to_fireworks"]


class SubmitError(ValueError):
    """A submission that cannot go ahead; the message names what is at fault."""


def launchpad_from_file(path: str | os.PathLike | None = None) -> LaunchPad:
    """The LaunchPad of a config file, or the one FireWorks is configured with.

    Parameters
    ----------
    path : path, optional
        A ``my_launchpad.yaml``.  Without it, FireWorks' own ``LAUNCHPAD_LOC``
        (``FW_config.yaml``, ``~/.fireworks/my_launchpad.yaml`` or
        ``./my_launchpad.yaml``) is used.

    Raises
    ------
    SubmitError
        If no config is given or found, or the file is missing or invalid.
    """
    try:
        from fireworks import LaunchPad
        from fireworks.fw_config import LAUNCHPAD_LOC
    except ImportError as err:
        raise SubmitError(
            "--engine fireworks needs FireWorks: pip install 'sevenomni[cluster]'"
        ) from err
    where = path or LAUNCHPAD_LOC
    if not where:
        raise SubmitError(
            "no LaunchPad config: pass --launchpad my_launchpad.yaml, or put one "
            "in ~/.fireworks/ (or set LAUNCHPAD_LOC in FW_config.yaml)"
        )
    if not Path(where).is_file():
        raise SubmitError(f"LaunchPad config {where} does not exist")
    try:
        return LaunchPad.from_file(str(where))
    except Exception as err:  # monty/yaml/pymongo raise many kinds
        raise SubmitError(f"LaunchPad config {where} is invalid: {err}") from err


def submit_to_fireworks(
    flow: Flow,
    store: JobStore | None,
    launchpad: LaunchPad,
    cluster: ClusterSettings,
) -> dict[int, str]:
    """Add the flow as one FireWorks workflow; returns ``{fw_id: job name}``.

    Parameters
    ----------
    flow : Flow
        The planned flow (see :func:`sevenomni_flows.run.plan`).
    store : JobStore or None
        Where the jobs write their outputs; it is serialised into each
        Firework, so workers need network access to it.  None uses the
        worker's own jobflow ``JOB_STORE`` setting instead.
    launchpad : LaunchPad
        The FireWorks database.
    cluster : ClusterSettings
        ``_category`` / ``_fworker`` of model and CPU jobs.
    """
    from jobflow.managers.fireworks import flow_to_workflow
    from pymongo.errors import PyMongoError

    where = f"{launchpad.host}:{launchpad.port}/{launchpad.name}"
    try:
        ready = launchpad.fw_id_assigner.count_documents({}) > 0
    except PyMongoError as err:
        raise SubmitError(
            f"cannot reach the LaunchPad database {where}: {err}"
        ) from err
    if not ready:
        raise SubmitError(
            f"the LaunchPad database {where} is not initialised: "
            "run `lpad -l my_launchpad.yaml reset` once"
        )
    route(flow, cluster, "fireworks")
    workflow = flow_to_workflow(flow, store=store)
    names = {fw.fw_id: fw.name for fw in workflow.fws}
    old_to_new = launchpad.add_wf(workflow)
    return {old_to_new[old]: name for old, name in names.items()}
