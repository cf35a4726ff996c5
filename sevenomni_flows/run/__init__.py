"""A screening run: plan the calculations of a spec, run what is not stored, report.

Used by ``sevenomni run`` and ``submit``; each step is a function that tests
can call.

- **Plan.** Every calculation the spec asks for gets its reuse key (see
  :mod:`sevenomni_flows.jobs.base`) before anything runs; the keys are
  looked up in the results store in a few bulk queries.  A calculation whose
  current document is ``completed`` is reused; a ``failed`` or ``skipped``
  one, or one with no document, is computed.
- **Execute.** The flow of the rest runs locally; every job writes one
  document per calculation as it goes.
- **Report.** Counts come from the plan: each planned calculation is
  completed, failed, skipped or missing (no document: a job that was killed).

One module per step: :mod:`.store`, :mod:`.plan`, :mod:`.inputs`,
:mod:`.execute` and :mod:`.report`.
"""

from .execute import execute
from .inputs import record_inputs, record_names
from .plan import Plan, plan, screening_from_spec
from .report import report, tally
from .store import open_store

__all__ = [
    "Plan",
    "execute",
    "open_store",
    "plan",
    "record_inputs",
    "record_names",
    "report",
    "screening_from_spec",
    "tally",
]
