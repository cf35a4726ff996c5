"""Screening: many materials fanned out over properties."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from jobflow import Flow, Maker

from ..jobs import ModelSettings
from ..jobs.base import Role, as_structure
from ..jobs.calculation import PropertyMaker, is_pick, pick
from ..jobs.registry import makers as registered
from ..properties import RelaxMaker
from ..schemas import structure_id

__all__ = ["DEFAULT_PROPERTIES", "ScreeningMaker", "properties"]

#: What a screening computes when not told (a spec's ``properties:`` default).
DEFAULT_PROPERTIES = ("relax", "elastic", "phonon", "eos")


def properties() -> tuple[str, ...]:
    """What a screening computes on each material (the registry's
    ``material`` stage; ``relax`` runs first)."""
    return tuple(registered("material"))


@dataclass
class ScreeningMaker(Maker):
    """Relax all materials in one batched job, then compute each property.

    Parameters
    ----------
    properties : list of str
        Among :func:`properties` (relaxation always runs first).
    relax_maker : RelaxMaker
        The relaxation every property is computed on.
    makers : dict
        The job Maker of each property; a property without one gets its
        registered Maker with default settings.  Set their ``settings``
        (model, task) alike with :meth:`with_settings`.
    structures_per_job : int, optional
        Most structures in one batched relaxation job (default: all in one).
        On a cluster, a job per GPU-sized chunk spreads the work over GPUs
        and confines a crash to its chunk.
    """

    name: str = "screening"
    properties: list[str] = field(default_factory=lambda: list(DEFAULT_PROPERTIES))
    relax_maker: RelaxMaker = field(default_factory=RelaxMaker)
    makers: dict[str, PropertyMaker] = field(default_factory=dict)
    structures_per_job: int | None = None

    def __post_init__(self):
        known = properties()
        unknown = [p for p in self.properties if p not in known]
        if unknown:
            raise ValueError(
                f"unknown properties {sorted(unknown)}; choose from {list(known)}"
            )
        classes = registered("material")
        self.makers = {
            p: self.makers.get(p) or classes[p]()
            for p in self.properties
            if p != "relax"
        }
        if self.structures_per_job is not None and self.structures_per_job < 1:
            raise ValueError(
                f"structures_per_job must be >= 1, got {self.structures_per_job}"
            )

    def with_settings(self, settings: ModelSettings) -> ScreeningMaker:
        """A copy with every job on ``settings`` (this one is unchanged)."""
        return replace(
            self,
            relax_maker=replace(self.relax_maker, settings=settings),
            makers={p: replace(m, settings=settings) for p, m in self.makers.items()},
        )

    def maker(self, prop: str) -> PropertyMaker:
        """The job Maker of a property (``relax`` included)."""
        return self.relax_maker if prop == "relax" else self.makers[prop]

    def inputs(
        self, structures: list[Any], labels: list[str]
    ) -> tuple[list[Any], list[str], list[Role]]:
        """The screened structures (role ``material``) plus those a property
        needs beside them (role ``reference``, e.g. elemental references),
        which are relaxed but not screened, with each one's role.

        An input already there, by label or as an identical structure, is
        not added again (a screened material serves as a reference too).
        """
        structures, labels = list(structures), list(labels)
        roles: list[Role] = ["material"] * len(structures)
        given = None
        for maker in self.makers.values():
            for label, structure in maker.extra_inputs(structures):
                if given is None:
                    given = {structure_id(as_structure(s)) for s in structures}
                if label not in labels and structure_id(structure) not in given:
                    structures.append(structure)
                    labels.append(label)
                    roles.append("reference")
        return structures, labels, roles

    def make(
        self,
        structures: list[Any],
        labels: list[str] | None = None,
        relaxed: dict[int, Any] | None = None,
        skip: set[tuple[int, str]] | None = None,
        tasks: list[str | None] | None = None,
        roles: list[Role] | None = None,
    ) -> Flow:
        """The screening flow: a few batched jobs, not one per material.

        Each chunk of ``structures_per_job`` materials gets one relaxation
        job and one job per property; every job stores one document per
        material (and per adsorbate) in the results store.

        Parameters
        ----------
        structures : list
            Input structures.
        labels : list of str, optional
            Where each came from, e.g. ``structures.extxyz[17]``.
        relaxed : dict, optional
            Stored relaxation results by material index, used instead of
            relaxing again.
        skip : set of (index, property), optional
            Calculations already stored, left out.
        tasks : list, optional
            The task of each structure, extra inputs included (default: the
            Makers' ``settings.task``); a structure listed once per task is
            computed at each, the tasks sharing the batches of each job.
        roles : list, optional
            The role of each structure, extra inputs included, as
            :meth:`inputs` gives them; without it, the extra inputs are
            added to ``structures`` here.
        """
        relaxed = dict(relaxed or {})
        skip = skip or set()
        labels = labels or [f"material {i}" for i in range(len(structures))]
        if roles is None:
            structures, labels, roles = self.inputs(structures, labels)
        if len(roles) != len(structures):
            raise ValueError(
                f"roles: {len(roles)} for {len(structures)} structures (extra "
                "inputs included)"
            )
        if tasks is None:
            tasks = [self.relax_maker.settings.task] * len(structures)
        if len(tasks) != len(structures):
            raise ValueError(
                f"tasks: {len(tasks)} for {len(structures)} structures (extra "
                "inputs included: list each structure once per task)"
            )
        jobs, sources = [], {}
        todo = [i for i in range(len(structures)) if i not in relaxed]
        for c, chunk in enumerate(self._chunks(todo)):
            relax_job = self.relax_maker.make(
                [structures[i] for i in chunk],
                [labels[i] for i in chunk],
                tasks=[tasks[i] for i in chunk],
            )
            relax_job.name = f"relax ({len(chunk)} structures)"
            jobs.append(relax_job)
            # one reference per batched job, not one per material: jobflow
            # resolves (and decodes) each reference on its own
            sources[str(c)] = relax_job.output
            for k, i in enumerate(chunk):
                relaxed[i] = pick(str(c), k)
        for prop in self.properties:
            if prop == "relax":
                continue
            maker = self.makers[prop]
            need = [
                i
                for i in range(len(structures))
                if (i, prop) not in skip and roles[i] == "material"
            ]
            # a property of the set gets every input in one job
            chunks = self._chunks(need)
            if maker.aggregate:
                chunks = [list(range(len(structures)))] if need else []
            for chunk in chunks:
                inputs = [relaxed[i] for i in chunk]
                used = {x["source"] for x in inputs if is_pick(x)}
                # only a property of the set sees references beside materials
                seen = {"roles": [roles[i] for i in chunk]} if maker.aggregate else {}
                job = maker.make(
                    inputs,
                    [labels[i] for i in chunk],
                    sources={c: sources[c] for c in sorted(used)},
                    tasks=[tasks[i] for i in chunk],
                    **seen,
                )
                job.name = f"{prop} ({len(chunk)} structures)"
                jobs.append(job)
        return Flow(jobs, name=self.name)

    def _chunks(self, indices: list[int]) -> list[list[int]]:
        size = self.structures_per_job or max(len(indices), 1)
        return [indices[k : k + size] for k in range(0, len(indices), size)]
