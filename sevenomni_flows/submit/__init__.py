"""Submitting screening flows to cluster engines (FireWorks, jobflow-remote).

Only :mod:`.resources` is imported here; the engine modules import their
engine lazily, so neither is needed for ``sevenomni run``.
"""

from .resources import CPU, MODEL, ClusterSettings, Route, job_kind, route

__all__ = ["CPU", "MODEL", "ClusterSettings", "Route", "job_kind", "route"]
