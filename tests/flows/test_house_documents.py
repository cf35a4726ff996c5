"""One house, its documents: one class per property, next to its Maker,
every number with its unit, bulky fields routed to the data store only."""

import typing

import pytest
from pydantic import BaseModel, Field
from pymatgen.core import Lattice, Structure

from sevenomni_flows.jobs.registry import documents, makers
from sevenomni_flows.properties.neb import NebDocument
from sevenomni_flows.schemas import (
    ResultDocument,
    bulky_fields,
    document_classes,
    unit_of,
)
from sevenomni_flows.stores import embedded_job_store
from sevenomni_flows.stores.results import Publisher, results_store, serialize


def test_one_document_class_per_property():
    """Two Makers of one property (slab and MOF adsorption) share its document."""
    for cls in makers().values():
        assert documents()[cls.property] is cls.document


def _home(module: str) -> str:
    """The property a module of ``sevenomni_flows.properties`` belongs to
    (its module, or its package for a property that is a package)."""
    parts = module.split(".")
    assert parts[:2] == ["sevenomni_flows", "properties"], module
    return ".".join(parts[:3])


def test_documents_live_next_to_their_makers():
    """Each property's Maker and document share one module (or one property
    package): none is left in ``schemas``, which keeps the shared base only.
    Planted: a document defined in ``schemas`` is refused by the check."""
    for cls in makers().values():
        assert _home(cls.document.__module__) == _home(cls.__module__), cls
    with pytest.raises(AssertionError):
        _home(ResultDocument.__module__)


def test_units_are_on_the_document_fields():
    """Summary units come from the documents; the same column may differ
    between properties (relax's volume ratio, MD's volume change in %)."""
    from sevenomni_flows.summary import unit

    assert unit("eos", "b0") == "GPa" == unit_of(documents()["eos"], "b0")
    assert unit("md", "volume_change") == "%"
    assert unit("relax", "volume_change") == "unitless"
    assert "GPa" in documents()["eos"].model_fields["b0"].description


#: Numeric document fields without a unit, and why: counts, indices and
#: integer matrices (a count of things is a number, not a quantity).
DIMENSIONLESS = {
    "steps": "optimiser or MD steps taken: a count",
    "max_steps_reached": "relaxations that hit max_steps: a count",
    "n_candidates": "a count of placements",
    "n_anomalous": "a count of placements",
    "n_atoms": "a count of atoms",
    "n_supercells": "a count of supercells",
    "n_insertions": "a count of insertions",
    "n_overlapping": "a count of insertions",
    "n_unphysical": "a count of insertions",
    "n_failed": "a count of insertions",
    "evaluations": "a count of model evaluations",
    "effective_insertions": "Kish's effective number of insertions: a count",
    "hull_size": "a count of hull entries",
    "free_layers": "a count of layers",
    "climbing_image": "an index",
    "miller_index": "integer Miller indices",
    "mesh": "q-points along each reciprocal axis: counts",
    "supercell_matrix": "an integer matrix of lattice vectors",
    "phonon_supercell_matrix": "an integer matrix of lattice vectors",
    "primitive_matrix": "a change of basis between two cells (ratios)",
}


def _numbers_in(annotation) -> bool:
    """Whether a type annotation holds numbers (int or float, not bool)."""
    if annotation in (int, float):
        return True
    return any(_numbers_in(arg) for arg in typing.get_args(annotation))


def _unit_missing(cls) -> list[str]:
    """Numeric fields of document ``cls`` without a machine-readable unit
    (:func:`~sevenomni_flows.schemas.unit_of`) that are not listed in
    :data:`DIMENSIONLESS`."""
    return [
        name
        for name, f in cls.model_fields.items()
        if _numbers_in(f.annotation)
        and unit_of(cls, name) is None
        and name not in DIMENSIONLESS
    ]


def test_every_number_of_every_document_has_a_unit():
    """Every numeric field of every registered property's document has its
    unit where code can read it (``quantity(...)``), or is a count, an index
    or an integer matrix listed with its reason.  Planted: a field with its
    unit in prose only is found."""
    missing = {p: m for p, cls in documents().items() if (m := _unit_missing(cls))}
    assert not missing, missing
    assert all(reason for reason in DIMENSIONLESS.values())

    class Prose(BaseModel):  # not a ResultDocument: registers nothing
        max_force: float | None = Field(None, description="Largest force, eV/Å")

    assert _unit_missing(Prose) == ["max_force"]


def test_bulky_fields_route_to_the_data_store_only():
    """The data store gets every bulky field (the Job's data= list) and the
    results store none of them: NEB images are not in the results store."""
    assert {"images", "force_constants", "band_structure", "relaxed_structures"} <= set(
        bulky_fields()
    )
    maker = makers("band")["neb"]()
    job = maker.make([], [])
    assert set(job.as_dict()["data"]) == set(bulky_fields())
    structure = Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    doc = NebDocument.model_construct(
        formula="Cu",
        structure_id="s",
        state="completed",
        key="k1",
        images=[structure, structure],
        barrier=0.5,
    )
    assert "images" not in serialize(doc)


def test_nothing_bulky_reaches_the_results_store(tmp_path):
    """Every document class, stored through the results store's writer,
    keeps no bulky field there."""
    store = embedded_job_store(tmp_path / "results")
    store.connect()
    results = results_store(store)
    docs = []
    for i, cls in enumerate(document_classes()):
        values = {name: [] for name in bulky_fields([cls])}
        docs.append(cls.model_construct(key=f"k{i}", property=cls.__name__, **values))
    Publisher(results, None).add(docs, flush=True)
    stored = list(results.query({}))
    assert len(stored) == len(docs)
    for row in stored:
        assert not set(row) & set(bulky_fields()), row["property"]
