"""The job boundary: every planned calculation ends in exactly one document.

All property Makers subclass :class:`PropertyMaker` and run through one job
function, :func:`calculate`.  It resolves the inputs, asks the Maker which
documents it owes (its targets), runs the Maker's batched ``compute``, and
turns whatever goes wrong into documents: an exception becomes a ``failed``
document (with its type) for every target it left without one, an unusable
upstream result a ``skipped`` one.  This is the one place failures are made.

Documents are also written, as they are made, to the ``results`` store of
the running JobStore when it has one (see
:mod:`sevenomni_flows.stores.results`): one current document per reuse key.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from jobflow import Job, Maker
from jobflow.core.job import JobConfig

from ..dimensionality import not_bulk
from ..schemas import Provenance, ResultDocument, bulky_fields
from ..stores.results import Publisher
from .base import (
    Item,
    ModelSettings,
    Role,
    Target,
    maker_settings,
    protocol,
    resolve_input,
)
from .registry import register
from .settings import compose

__all__ = ["JOB_DONE", "PropertyMaker", "calculate", "is_pick", "pick", "settle"]

progress_log = logging.getLogger("sevenomni.progress")
#: Attribute of the log record a job emits when it has stored its documents.
JOB_DONE = "sevenomni_job_done"


@dataclass(frozen=True)
class Context:
    """What a job computes with: the model, its task, and their provenance.

    A job mixing tasks (see :attr:`PropertyMaker.mixes_tasks`) has the
    context of each task in ``by_task``; each item's task is ``Item.task``.
    """

    pot: Any
    task: str | None
    provenance: Provenance
    publisher: Publisher
    by_task: dict = field(default_factory=dict)

    def at(self, task: str | None) -> Context:
        """The context of ``task`` (this one if the job has one task)."""
        return self.by_task.get(task, self)

    def of(self, target: Target) -> Context:
        """The context of ``target``'s task."""
        return self.at(target.protocol.get("task"))


@dataclass
class PropertyMaker(Maker):
    """A Maker of one property, computed for one structure or a batch of them.

    Subclasses set ``property`` and ``document`` and implement
    :meth:`compute`; they may override :meth:`targets` (several documents
    per input) and :meth:`resolve` (inputs that are not structures).  One
    that sets ``stage`` is a spec property: it registers itself (see
    :mod:`~sevenomni_flows.jobs.registry`).
    """

    name: str = "property"
    settings: ModelSettings = field(default_factory=ModelSettings)

    #: What it computes (the documents' ``property``).
    property: ClassVar[str] = ""
    #: Its document class.
    document: ClassVar[type[ResultDocument]] = ResultDocument
    #: Its spec section (default: the property).
    section: ClassVar[str] = ""
    #: Where a spec runs it: material, framework or band ("" for none).
    stage: ClassVar[str] = ""
    #: Whether its ``compute`` takes items of several tasks at once (each
    #: item's ``task``), evaluating them in shared batches; others are
    #: computed once per task.
    mixes_tasks: ClassVar[bool] = False
    #: Whether it needs a 3D bulk crystal: any other input (a molecule in a
    #: box, a slab with vacuum) fails alone, saying so (see :func:`settle`).
    bulk_only: ClassVar[bool] = False
    #: The revision of its method: raised when a fix changes the results of
    #: unchanged settings, so that a rerun recomputes what the earlier method
    #: stored instead of serving it (the old documents stay in the store).
    revision: ClassVar[int] = 0
    #: Whether a screening gives it one job over all materials (a property
    #: of the set, e.g. the convex hull; see :meth:`over`).
    aggregate: ClassVar[bool] = False
    #: Fields left out of its spec section, and those fixed there.
    spec_exclude: ClassVar[tuple[str, ...]] = ()
    spec_fixed: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("stage"):
            register(cls)

    def __post_init__(self):
        compose(self)  # settings given as mappings, over this Maker's defaults

    @classmethod
    def spec_key(cls, name: str) -> str:
        """The spec key of setting ``name``, e.g. ``qha.relax.fmax``, for
        messages."""
        return f"{cls.section or cls.property or cls.__name__}.{name}"

    def make(
        self,
        structures,
        labels: list[str] | str | None = None,
        sources=None,
        tasks: list[str | None] | None = None,
        roles: list[Role] | None = None,
    ) -> Job:
        """A job computing this property of one input or a list of them.

        Returns one document for one input and a list for a list (more with
        :meth:`targets` that owe several).  ``sources`` maps names to the
        outputs of batched jobs, which inputs made by :func:`pick` index.
        ``tasks`` gives each input's task (default: ``settings.task``),
        ``roles`` its :data:`~sevenomni_flows.jobs.base.Role` (default:
        all ``material``).
        """
        many = isinstance(structures, list)
        return Job(
            calculate,
            function_args=(self, structures, labels, sources, tasks, roles),
            name=f"{self.name} ({len(structures)})" if many else self.name,
            config=JobConfig(expose_store=True),
            data=list(bulky_fields()),  # bulky fields go to the data store
        )

    def run(
        self, structures, labels=None, tasks=None, roles=None
    ) -> list[ResultDocument]:
        """The calculation without a workflow engine (the same documents)."""
        many = isinstance(structures, list)
        if not many:
            structures, labels = [structures], [labels] if labels else None
        return settle(self, structures, labels, tasks, roles)

    def resolve(self, obj: Any, label: str | None) -> Item:
        """The input as an :class:`~sevenomni_flows.jobs.base.Item`."""
        return resolve_input(obj, label)

    def over(self, items: list[Item]) -> PropertyMaker:
        """This Maker for the set ``items`` (itself, by default).

        An ``aggregate`` Maker returns a copy whose settings identify the
        set, so that its reuse keys do; the planner and the job call it on
        the same items.
        """
        return self

    def extra_inputs(self, structures: list) -> list[tuple[str, Any]]:
        """Structures this property needs relaxed beside the screened ones,
        as ``(label, structure)`` (none, by default).  A screening gives
        them the role ``reference``: relaxed, and passed to an ``aggregate``
        Maker, but owed no per-material property."""
        return []

    def targets(self, item: Item, pot, task) -> list[Target]:
        """The documents owed for ``item`` (one, by default)."""
        proto = protocol(self.property, pot, task, maker_settings(self), item.on)
        return [Target(item.formula, item.structure_id, item.label, proto)]

    def compute(
        self, items: list[Item], targets: list[list[Target]], ctx: Context
    ) -> list[list[ResultDocument] | BaseException]:
        """Documents for each ready item, or the exception that stopped it."""
        raise NotImplementedError

    def doc(self, target: Target, ctx: Context, **values) -> ResultDocument:
        """A document of this property for ``target`` (at its task)."""
        model = ctx.of(target).provenance
        return self.document(**target.fields(), model=model, **values)

    def failed(
        self, target: Target, ctx: Context, err: BaseException | str, **values
    ) -> ResultDocument:
        """A failed document of this property for ``target``, naming the error.

        ``values`` may hold ``error_type`` and fields known despite the failure.
        """
        model = ctx.of(target).provenance
        return self.document.failed(target.fields(), model, err, **values)


def _message(err: BaseException) -> str:
    return str(err) or type(err).__name__


def settle(
    maker: PropertyMaker, inputs: list, labels=None, tasks=None, roles=None
) -> list[ResultDocument]:
    """Run ``maker`` on ``inputs``: exactly one document per target, always.

    Parameters
    ----------
    maker : PropertyMaker
        What to compute.
    inputs : list
        Structures, upstream results, or what the Maker's ``resolve`` takes.
    labels : list of str, optional
        Where each input came from (for documents and error messages).
    tasks : list, optional
        Each input's task (default: the Maker's ``settings.task``).  A
        Maker that :attr:`~PropertyMaker.mixes_tasks` evaluates them in
        shared batches; others once per task.
    roles : list, optional
        Each input's :data:`~sevenomni_flows.jobs.base.Role` (default:
        all ``material``).
    """
    publisher = Publisher.current()
    tasks = list(tasks) if tasks is not None else [maker.settings.task] * len(inputs)
    contexts: dict = {}
    for t in dict.fromkeys(tasks):
        pot, task = replace(maker.settings, task=t).potential()
        provenance = Provenance.from_potential(pot, task)
        contexts[t] = Context(pot, task, provenance, publisher)
    by_task = {c.task: c for c in contexts.values()}
    first = next(iter(contexts.values()))
    ctx = replace(first, by_task=by_task)
    if len(by_task) > 1:
        ctx = replace(ctx, task=None)
    labels = list(labels) if isinstance(labels, list) else [labels] * len(inputs)
    roles = list(roles) if roles is not None else ["material"] * len(inputs)
    items = []
    for obj, label, t, role in zip(inputs, labels, tasks, roles, strict=True):
        try:
            item = maker.resolve(obj, label)
        except Exception as err:  # a Maker's resolve may raise
            item = Item("unknown", "unknown", label or "unknown", "unknown")
            item.error, item.error_type = _message(err), type(err).__name__
        ready = item.structure is not None and not (item.error or item.skip)
        if maker.bulk_only and ready:
            why = not_bulk(item.structure, item.label, maker.property)
            if why:
                item.error, item.error_type = why, "NotBulk"
        item.task, item.role = contexts[t].task, role
        items.append(item)
    try:
        maker = maker.over(items)
    except Exception as err:  # e.g. a file the set depends on cannot be read
        for item in items:
            item.error, item.error_type = _message(err), type(err).__name__
    owed = [maker.targets(item, first.pot, item.task) for item in items]
    ready = [i for i, it in enumerate(items) if not (it.skip or it.error)]
    groups = [ready]
    if len(by_task) > 1 and not maker.mixes_tasks:  # once per task
        groups = [[i for i in ready if items[i].task == t] for t in by_task]
    results = {}
    for group in groups:
        here = ctx if len(groups) == 1 else ctx.at(items[group[0]].task)
        results.update(_compute(maker, items, owed, group, here) if group else {})
    docs = []
    for i, (item, targets) in enumerate(zip(items, owed, strict=True)):
        mine = _one_each(maker, item, targets, results.get(i), ctx)
        for doc in mine:  # where the input came from, on every document
            doc.labels = list(dict.fromkeys([doc.label or item.label, *doc.labels]))
            doc.sources = list(dict.fromkeys([*item.sources, *doc.sources]))
        docs += mine
    ctx.publisher.add(docs, flush=True)
    states = Counter(d.state for d in docs)
    progress_log.info(
        "%s: %d documents (%s)",
        maker.name,
        len(docs),
        ", ".join(f"{n} {state}" for state, n in states.items()) or "none owed",
        extra={JOB_DONE: maker.name},
    )
    return docs


def _compute(maker, items, owed, group, ctx) -> dict:
    """The Maker's results for the items ``group`` (by index)."""
    try:
        computed = maker.compute(
            [items[i] for i in group], [owed[i] for i in group], ctx
        )
        if len(computed) != len(group):
            raise RuntimeError(
                f"{type(maker).__name__}.compute returned {len(computed)} results "
                f"for {len(group)} inputs"
            )
    except Exception as err:  # the boundary: the whole batch failed
        computed = [err] * len(group)
    return dict(zip(group, computed, strict=True))


def _one_each(maker, item: Item, targets, result, ctx) -> list[ResultDocument]:
    """Exactly one document per target, whatever ``result`` holds."""
    if item.error:
        return [
            maker.failed(t, ctx, item.error, error_type=item.error_type)
            for t in targets
        ]
    if item.skip:
        return [maker.doc(t, ctx, state="skipped", error=item.skip) for t in targets]
    if isinstance(result, BaseException):
        return [maker.failed(t, ctx, result) for t in targets]
    made = {d.key: d for d in result or []}
    return [
        made.get(t.key)
        or maker.failed(
            t,
            ctx,
            "internal error: no document was produced",
            error_type="InternalError",
        )
        for t in targets
    ]


def pick(source: str, index: int) -> dict:
    """An input that is entry ``index`` of the batched output named ``source``."""
    return {"source": source, "index": index, "pick": True}


def is_pick(obj) -> bool:
    """Whether ``obj`` was made by :func:`pick`."""
    return isinstance(obj, dict) and obj.get("pick") is True and "source" in obj


def calculate(
    maker: PropertyMaker, structures, labels=None, sources=None, tasks=None, roles=None
):
    """The job of :meth:`PropertyMaker.make`: :meth:`PropertyMaker.run`.

    Inputs made by :func:`pick` are taken from ``sources``, the resolved
    outputs of batched upstream jobs (one reference each).
    """
    if isinstance(structures, list) and sources:
        structures = [
            sources[x["source"]][x["index"]] if is_pick(x) else x for x in structures
        ]
    docs = maker.run(structures, labels, tasks, roles)
    return docs if isinstance(structures, list) or len(docs) != 1 else docs[0]


def model_title(ctx: Context, target: Target | None = None) -> str:
    """The resolved model and task, for plot titles: ``7net-mf-0, task PBE``
    (the task of ``target`` in a job mixing tasks)."""
    if target is not None:
        ctx = ctx.of(target)
    name = ctx.provenance.name
    return f"{name}, task {ctx.task}" if ctx.task else name
