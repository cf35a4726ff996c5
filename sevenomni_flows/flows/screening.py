"""Screening: many materials fanned out over properties."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker

from ..jobs import ElasticMaker, EosMaker, ModelSettings, PhononMaker, RelaxMaker
from ..jobs.calculation import is_pick, pick
from ..jobs.relax import StaticMaker

__all__ = ["PROPERTIES", "ScreeningMaker"]

#: Properties computed on relaxed structures, and the relaxation itself.
PROPERTIES = (
    "relax",
    "static",
    "elastic",
    "phonon",
    "eos",
    "adsorption",
    "slab_convergence",
    "md",
)


@dataclass
class ScreeningMaker(Maker):
    """Relax all materials in one batched job, then compute each property.

    Parameters
    ----------
    properties : list of str
        Among ``relax``, ``static``, ``elastic``, ``phonon``, ``eos``,
        ``adsorption``, ``slab_convergence`` and ``md`` (relaxation always
        runs first).
    relax_maker, static_maker, elastic_maker, phonon_maker, eos_maker
        The job Makers used; set their ``settings`` (model, task) alike, e.g.
        with :meth:`with_settings`.
    structures_per_job : int, optional
        Most structures in one batched relaxation job (default: all in one).
        On a cluster, a job per GPU-sized chunk spreads the work over GPUs
        and confines a crash to its chunk.
    """

    name: str = "screening"
    properties: list[str] = field(
        default_factory=lambda: ["relax", "elastic", "phonon", "eos"]
    )
    relax_maker: RelaxMaker = field(default_factory=RelaxMaker)
    static_maker: StaticMaker = field(default_factory=StaticMaker)
    elastic_maker: ElasticMaker = field(default_factory=ElasticMaker)
    phonon_maker: PhononMaker = field(default_factory=PhononMaker)
    eos_maker: EosMaker = field(default_factory=EosMaker)
    adsorption_maker: Maker | None = None
    slab_convergence_maker: Maker | None = None
    md_maker: Maker | None = None
    structures_per_job: int | None = None

    def __post_init__(self):
        unknown = set(self.properties) - set(PROPERTIES)
        if "adsorption" in self.properties and self.adsorption_maker is None:
            from ..jobs.adsorption import SlabAdsorptionMaker

            self.adsorption_maker = SlabAdsorptionMaker(relax_bulk=False)
        if (
            "slab_convergence" in self.properties
            and self.slab_convergence_maker is None
        ):
            from ..jobs.slab_convergence import SlabConvergenceMaker

            self.slab_convergence_maker = SlabConvergenceMaker()
        if "md" in self.properties and self.md_maker is None:
            from ..jobs.md import MDMaker

            self.md_maker = MDMaker()
        if unknown:
            raise ValueError(
                f"unknown properties {sorted(unknown)}; choose from {list(PROPERTIES)}"
            )
        if self.structures_per_job is not None and self.structures_per_job < 1:
            raise ValueError(
                f"structures_per_job must be >= 1, got {self.structures_per_job}"
            )

    def with_settings(self, settings: ModelSettings) -> ScreeningMaker:
        """The same screening with every job on ``settings``."""
        for maker in self.makers().values():
            if maker is not None:
                maker.settings = settings
        return self

    def makers(self) -> dict[str, Maker]:
        """The job Maker of each property."""
        return {
            "relax": self.relax_maker,
            "static": self.static_maker,
            "elastic": self.elastic_maker,
            "phonon": self.phonon_maker,
            "eos": self.eos_maker,
            "adsorption": self.adsorption_maker,
            "slab_convergence": self.slab_convergence_maker,
            "md": self.md_maker,
        }

    def make(
        self,
        structures: list[Any],
        labels: list[str] | None = None,
        relaxed: dict[int, Any] | None = None,
        skip: set[tuple[int, str]] | None = None,
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
        """
        relaxed = dict(relaxed or {})
        skip = skip or set()
        labels = labels or [f"material {i}" for i in range(len(structures))]
        jobs, sources = [], {}
        todo = [i for i in range(len(structures)) if i not in relaxed]
        for c, chunk in enumerate(self._chunks(todo)):
            relax_job = self.relax_maker.make(
                [structures[i] for i in chunk], [labels[i] for i in chunk]
            )
            relax_job.name = f"relax ({len(chunk)} structures)"
            jobs.append(relax_job)
            # one reference per batched job, not one per material: jobflow
            # resolves (and decodes) each reference on its own
            sources[str(c)] = relax_job.output
            for k, i in enumerate(chunk):
                relaxed[i] = pick(str(c), k)
        makers = self.makers()
        for prop in self.properties:
            if prop == "relax":
                continue
            need = [i for i in range(len(structures)) if (i, prop) not in skip]
            for chunk in self._chunks(need):
                inputs = [relaxed[i] for i in chunk]
                used = {x["source"] for x in inputs if is_pick(x)}
                job = makers[prop].make(
                    inputs,
                    [labels[i] for i in chunk],
                    sources={c: sources[c] for c in sorted(used)},
                )
                job.name = f"{prop} ({len(chunk)} structures)"
                jobs.append(job)
        return Flow(jobs, name=self.name)

    def _chunks(self, indices: list[int]) -> list[list[int]]:
        size = self.structures_per_job or max(len(indices), 1)
        return [indices[k : k + size] for k in range(0, len(indices), size)]
