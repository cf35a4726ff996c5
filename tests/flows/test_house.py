"""One house: the property registry, the spec, the summary and the store
routing agree, and each fact is said once."""

import ast
from pathlib import Path

import pytest

from sevenomni_flows.flows import ScreeningMaker, properties
from sevenomni_flows.jobs.calculation import PropertyMaker
from sevenomni_flows.jobs.registry import STAGES, makers
from sevenomni_flows.schemas import (
    ResultDocument,
    document_classes,
    unit_of,
)
from sevenomni_flows.spec import FRAMEWORK_PROPERTIES, SECTIONS, RunSpec
from sevenomni_flows.stores.results import results_store
from sevenomni_flows.summary import per_property

PACKAGE = Path(__file__).parents[2] / "sevenomni_flows"


@pytest.mark.parametrize("section", list(makers()))
def test_every_registered_maker_is_complete(section):
    """Each registered Maker has its document, spec section and summary
    columns; each column is a field of its document."""
    cls = makers()[section]
    assert issubclass(cls, PropertyMaker) and cls.stage in STAGES
    doc = cls.document
    assert issubclass(doc, ResultDocument) and doc is not ResultDocument
    assert doc.model_fields["property"].default == cls.property
    assert section in RunSpec.model_fields and SECTIONS[section]._maker is cls
    assert doc.columns, f"{doc.__name__} declares no summary columns"
    missing = [c for c in doc.columns if c not in doc.model_fields]
    assert not missing, f"{doc.__name__}: summary columns {missing} are not fields"
    assert per_property()[cls.property] == doc.columns


def test_registry_spec_and_screening_list_the_same_properties():
    """The spec's properties: choices, the screening flow's and the
    registry's material stage are one list; framework_properties too."""
    literal = RunSpec.model_fields["properties"].annotation.__args__[0].__args__
    assert set(literal) == set(properties()) == set(makers("material"))
    framework = RunSpec.model_fields["framework_properties"].annotation
    assert set(framework.__args__[0].__args__) == set(FRAMEWORK_PROPERTIES)
    assert set(FRAMEWORK_PROPERTIES.values()) == set(makers("framework"))
    screening = ScreeningMaker(properties=list(properties()))
    assert set(screening.makers) == set(properties()) - {"relax"}


def _property_names() -> set[str]:
    return {cls.property for cls in makers().values()} | set(makers())


def _units() -> set[str]:
    return {
        u
        for cls in document_classes()
        for name in cls.model_fields
        if (u := unit_of(cls, name)) not in (None, "unitless")
    }


def _strings(nodes) -> list[str]:
    return [
        n.value
        for n in nodes
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _restated(source: str, props: set[str], units: set[str]) -> list[str]:
    """Literal property lists (three or more property names in one list,
    tuple, set or dict's keys) and unit tables (a dict with two or more unit
    strings among its values) in ``source``, as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            named = set(_strings(node.elts)) & props
        elif isinstance(node, ast.Dict):
            named = set(_strings(node.keys)) & props
            in_units = set(_strings(node.values)) & units
            if len(in_units) >= 2:
                found.append(f"{node.lineno}: unit table {sorted(in_units)}")
        else:
            continue
        if len(named) >= 3:
            found.append(f"{node.lineno}: property list {sorted(named)}")
    return found


def test_no_property_list_or_unit_table_is_restated():
    """No module of the flows package writes its own list of properties or
    table of units: the registry lists the properties, the document fields
    hold the units.  Two literals are allowed: the default ``properties:``
    of a screening (``DEFAULT_PROPERTIES``), and the invariance harness's
    table (``testing.entries.ENTRIES``), one entry per property (but those
    whose Maker carries its own, ``invariance()``), which
    ``test_every_registered_property_has_an_entry`` holds equal to the
    registry, so it cannot drift from it."""
    props, units = _property_names(), _units()
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if hits := _restated(path.read_text(), props, units):
            found[str(path.relative_to(PACKAGE))] = hits
    assert set(found) == {"flows/screening.py", "testing/entries.py"}, found
    [default] = found["flows/screening.py"]
    assert "'elastic', 'eos', 'phonon', 'relax'" in default, default
    [table] = found["testing/entries.py"]
    own = {s for s, cls in makers().items() if hasattr(cls, "invariance")}
    assert all(f"'{p}'" in table for p in props - own), table  # every property


def test_the_restated_check_finds_lists_and_unit_tables():
    """Planted: a property order and a unit table, each as a module would
    write it, are found; ordinary literals are not."""
    props, units = _property_names(), _units()
    planted = (
        'ORDER = ("relax", "static", "elastic", "phonon")\n'
        'COLUMN_UNITS = {"e_above_hull": "eV/atom", "bulk_modulus_vrh": "GPa"}\n'
        'SHOWN = {"eos": 1, "qha": 2, "widom": 3}\n'
    )
    assert [h.split(":")[0] for h in _restated(planted, props, units)] == [
        "1",
        "2",
        "3",
    ]
    fine = 'PAIR = ("relax", "static")\nFMT = {"a": "eV", "b": "x"}\n'
    assert _restated(fine, props, units) == []


def _label_tests(source: str) -> list[int]:
    """Lines of ``source`` that tell something from a label's text: a
    ``startswith``/``endswith`` or ``in`` test on a name holding a label."""

    def is_label(node) -> bool:
        text = ast.unparse(node)
        return "label" in text.lower() and not text.endswith(")")

    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"startswith", "endswith"}
            and is_label(node.func.value)
        ):
            found.append(node.lineno)
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.In | ast.NotIn) for op in node.ops
        ):
            if isinstance(node.left, ast.Constant) and any(
                is_label(c) for c in node.comparators
            ):
                found.append(node.lineno)
    return found


def test_no_label_prefix_carries_meaning():
    """A label names an input for people; what an input is (a material, an
    elemental reference) is its typed ``role``.  No module of the package
    tests a label's text.  Planted: the old check, ``label.startswith(PREFIX)``
    and ``"reference:" in labels[i]``, is found."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if hits := _label_tests(path.read_text()):
            found[str(path.relative_to(PACKAGE))] = hits
    assert not found, found
    planted = (
        "def is_reference(label):\n    return label.startswith(PREFIX)\n"
        "x = 'reference:' in labels[i]\n"
        "ok = error.startswith(label)\n"
    )
    assert sorted(_label_tests(planted)) == [2, 3]


def test_failed_documents_are_built_in_one_function():
    """``state="failed"`` appears in one place: ``ResultDocument.failed``."""
    sites = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            for kw in getattr(node, "keywords", []):
                if (
                    kw.arg == "state"
                    and isinstance(kw.value, ast.Constant)
                    and kw.value.value == "failed"
                ):
                    sites.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(k, ast.Constant)
                        and k.value == "state"
                        and isinstance(v, ast.Constant)
                        and v.value == "failed"
                    ):
                        sites.append(f"{path.name}:{node.lineno}")
    assert len(sites) == 1 and sites[0].startswith("documents.py"), sites


def test_failure_builder_classifies_retry():
    """Input errors, guards and unconverged steps are kept on rerun; crashes
    and out-of-memory are retried."""
    identity = {
        "formula": "Cu",
        "structure_id": "s",
        "label": "Cu",
        "property": "relax",
        "key": "k",
    }
    model = _provenance()
    doc = ResultDocument.failed(identity, model, ValueError("bad input"))
    assert (doc.state, doc.error, doc.error_type, doc.transient) == (
        "failed",
        "bad input",
        "ValueError",
        False,
    )
    doc = ResultDocument.failed(identity, model, MemoryError())
    assert doc.error == "MemoryError" and doc.transient is True
    doc = ResultDocument.failed(identity, model, "blew up", error_type="MDError")
    assert doc.transient is False


def _provenance():
    from sevenomni_core import load_model
    from sevenomni_flows.schemas import Provenance

    return Provenance.from_potential(load_model("7net-0", device="cpu"), None)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("adsorption", "bulk_relax.fmax", 0.02),
        ("widom", "guest_relax.fmax", 0.02),
        ("widom", "framework_relax.max_steps", 100),
        ("neb", "relax.optimizer", "fire"),
        ("qha", "relax.optimizer", "lbfgs"),  # a key QHA did not have before
    ],
)
def test_inner_relaxations_are_spec_settings_in_the_key(section, key, value):
    """The relaxations inside adsorption, Widom, NEB and QHA are spec
    settings (a RelaxSettings each), and changing one gives a new reuse key."""
    from ase.build import bulk

    from sevenomni_core import load_model
    from sevenomni_flows.jobs.base import resolve_input

    pot = load_model("7net-0", device="cpu")
    item = resolve_input(bulk("Cu", "fcc", a=3.61), "Cu")
    group, sub = key.split(".")
    default = RunSpec.model_validate({}).maker(section)
    changed = RunSpec.model_validate({section: {group: {sub: value}}}).maker(section)
    assert getattr(getattr(changed, group), sub) == value
    assert getattr(getattr(default, group), sub) != value
    if section == "neb":  # a band's key is its protocol's hash
        from sevenomni_flows.jobs.base import maker_settings

        assert maker_settings(changed) != maker_settings(default)
        return
    old = {t.key for t in default.targets(item, pot, None)}
    new = {t.key for t in changed.targets(item, pot, None)}
    assert old and new and not old & new


ROOT = Path(__file__).parents[2]


def test_planned_keys_are_the_keys_the_jobs_store(tmp_path, monkeypatch):
    """For every registered property (materials, frameworks and bands), the
    planner's keys are exactly the keys the jobs store documents under.

    Every Maker's ``compute`` is replaced by one that raises, so that the
    jobs only work out their targets (their identity) and store failed or
    skipped documents: the keys are the jobs' own, at no compute cost."""
    import shutil
    import textwrap

    from sevenomni_flows.run import execute, open_store, plan
    from sevenomni_flows.spec import load_spec

    def stub(self, items, targets, ctx):
        raise RuntimeError("not computed in this test")

    for cls in makers().values():
        monkeypatch.setattr(cls, "compute", stub)
    shutil.copy(ROOT / "workflows/structures/Mg-MOF-74.cif", tmp_path)
    (tmp_path / "spec.yaml").write_text(
        textwrap.dedent(
            f"""
            model: 7net-0
            device: cpu
            structures:
              - {{bulk: Cu, crystal: fcc, a: 3.61}}
              - {{bulk: Al, crystal: fcc, a: 4.05, name: aluminium}}
            properties: {list(makers("material"))}
            adsorption: {{adsorbates: [CO, O], miller_indices: [[1, 1, 1], [1, 0, 0]]}}
            md: {{temperatures: [300, 600]}}
            frameworks:
              - {{file: Mg-MOF-74.cif, name: MOF, guests: [CO2, N2]}}
            framework_properties: {list(FRAMEWORK_PROPERTIES)}
            widom: {{guests: [CO2, N2]}}
            bands:
              - {{kind: vacancy, structure: {{bulk: Cu, crystal: fcc, a: 3.61}}}}
            """
        )
    )
    spec, base = load_spec(tmp_path / "spec.yaml")
    store = open_store(tmp_path / "results")
    settings = spec.model_settings()
    run = plan(spec, base, store, settings, str(tmp_path / "plots"))
    execute(run, store)
    stored = {d["key"]: d for d in results_store(store).query({})}
    assert set(stored) == set(run.planned)
    seen = {d["property"] for d in stored.values()}
    assert seen == {cls.property for cls in makers().values()}


def _private_imports(package: Path) -> list[str]:
    """``from m import _name`` where ``_name`` is not a (private) module."""
    found = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                folder = path.parent
                for _ in range(node.level - 1):
                    folder = folder.parent
            else:
                folder = package.parent
            for part in (node.module or "").split(".") if node.module else []:
                folder = folder / part
            for alias in node.names:
                name = alias.name
                if not name.startswith("_") or name.startswith("__"):
                    continue
                if (folder / f"{name}.py").exists() or (folder / name).is_dir():
                    continue  # a private module, re-exported by its package
                found.append(f"{path}:{node.lineno}: {name}")
    return found


def test_no_private_name_is_imported_across_modules():
    """Modules share public names only (private modules are fine)."""
    root = Path(__file__).parents[2]
    found = _private_imports(root / "sevenomni_core")
    found += _private_imports(root / "sevenomni_flows")
    assert not found, found


def test_the_private_import_check_finds_one(tmp_path):
    """The check above fails on a private name imported from another module."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("def _helper():\n    pass\n")
    (pkg / "b.py").write_text("from .a import _helper\n")
    assert len(_private_imports(pkg)) == 1


@pytest.mark.parametrize("section", list(makers()))
def test_makers_round_trip_through_json(section):
    """Every Maker, as FireWorks and jobflow-remote store it (monty JSON),
    comes back equal, with the same result-changing settings."""
    import json

    from monty.json import MontyDecoder, MontyEncoder

    from sevenomni_flows.jobs import ModelSettings
    from sevenomni_flows.jobs.base import maker_settings

    maker = RunSpec.model_validate({}).maker(
        section, settings=ModelSettings("7net-0", task=None, dtype="float64")
    )
    text = json.dumps(maker.as_dict(), cls=MontyEncoder)
    back = json.loads(text, cls=MontyDecoder)
    assert type(back) is type(maker)
    assert back == maker
    assert maker_settings(back) == maker_settings(maker)
    assert back.settings == maker.settings


def test_screening_maker_round_trips_and_with_settings_copies():
    """The screening Maker round-trips; with_settings returns a configured
    copy and leaves the original as it was."""
    from monty.json import MontyDecoder

    from sevenomni_flows.jobs import ModelSettings

    screening = ScreeningMaker(properties=["relax", "eos", "md"])
    back = MontyDecoder().process_decoded(screening.as_dict())
    assert back == screening
    settings = ModelSettings("7net-0", dtype="float64")
    copy = screening.with_settings(settings)
    assert copy.makers["eos"].settings == settings == copy.relax_maker.settings
    assert screening.makers["eos"].settings == ModelSettings()


def test_odd_structures_share_the_flows_batches():
    """The relaxation and static jobs of a screening batch take dilute cells,
    molecules in boxes and one-atom cells beside crystals: every document
    completes with the numbers the structure gets alone."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from sevenomni_core.testing import odd_structures
    from sevenomni_flows.jobs import ModelSettings
    from sevenomni_flows.properties import RelaxMaker, StaticMaker

    settings = ModelSettings("7net-0", device="cpu", dtype="float64")
    odd = {k: a for k, a in odd_structures().items() if a.pbc.all()}
    structures = [AseAtomsAdaptor.get_structure(a) for a in odd.values()]
    for maker in (
        RelaxMaker(settings=settings, max_steps=30),
        StaticMaker(settings=settings),
    ):
        batched = maker.run(structures, list(odd))
        assert [d.state for d in batched] == ["completed"] * len(odd)
        for doc, structure, label in zip(batched, structures, odd, strict=True):
            [alone] = maker.run([structure], [label])
            assert doc.energy == pytest.approx(alone.energy, abs=1e-8), label


#: The Maker of each engine function, and its fields named otherwise there.
ENGINE_MAKERS = {
    "relax": ("relax", {}),
    "md": ("md", {}),
    "neb": ("neb", {"spring": "k"}),
}
#: Maker fields whose default differs from the engine's on purpose, and why.
DIFFERENT_ON_PURPOSE = {
    ("RelaxMaker", "relax_cell"): "a screening relaxes the cell; relax() keeps it"
}


def _engine_default_problems(cls: type, engine) -> list[str]:
    """Fields of ``cls`` that are arguments of ``engine`` but do not take
    their default from it, written once as ``default("engine", "argument")``
    in the class body, with the engine's value."""
    import dataclasses
    import inspect
    import textwrap

    parameters = inspect.signature(engine).parameters
    renames = next(r for e, r in ENGINE_MAKERS.values() if e == engine.__name__)
    written = {}  # field -> its default's source, from the nearest class
    for klass in reversed(cls.__mro__[:-1]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        for node in tree.body[0].body:
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                written[node.target.id] = ast.unparse(node.value)
    instance = cls()
    problems = []
    for f in dataclasses.fields(cls):
        argument = renames.get(f.name, f.name)
        if (cls.__name__, f.name) in DIFFERENT_ON_PURPOSE or argument not in parameters:
            continue
        if parameters[argument].default is inspect.Parameter.empty:
            continue
        once = f"default({engine.__name__!r}, {argument!r})"
        if written.get(f.name) != once:
            problems.append(
                f"{cls.__name__}.{f.name} = {written.get(f.name)}, not {once}"
            )
        if getattr(instance, f.name) != parameters[argument].default:
            problems.append(f"{cls.__name__}.{f.name} differs from {engine.__name__}()")
    return problems


@pytest.mark.parametrize("section", list(ENGINE_MAKERS))
def test_maker_defaults_are_the_engine_defaults(section):
    """Every setting of an engine's Maker that is an argument of the engine
    (found by name, not listed by hand) takes the engine's default, written
    once: ``default("engine", "argument")``; differences on purpose are listed
    with their reason."""
    from sevenomni_core import batch

    engine = getattr(batch, ENGINE_MAKERS[section][0])
    assert not _engine_default_problems(makers()[section], engine)


def test_the_engine_default_check_finds_a_restated_default():
    """Planted: a Maker writing relax()'s own max_steps (the same value,
    written twice) and one drifting from relax()'s fmax are both found."""
    from dataclasses import dataclass

    from sevenomni_core.batch import relax
    from sevenomni_flows.properties import RelaxMaker

    @dataclass
    class Restated(RelaxMaker):
        max_steps: int = 500  # relax()'s default today, written a second time
        fmax: float = 0.02

    problems = _engine_default_problems(Restated, relax)
    assert any("Restated.max_steps = 500" in p for p in problems), problems
    assert any("Restated.fmax differs" in p for p in problems), problems


#: Sections whose Maker has no setting of its own (the model is its key).
NO_SETTINGS = {"static"}


def _stage_input(maker, tmp_path):
    """An input of the Maker's stage: bulk Cu, Mg-MOF-74, a Cu vacancy hop."""
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    from sevenomni_flows.jobs.base import resolve_input

    cu = bulk("Cu", "fcc", a=3.61)
    if maker.stage == "framework":
        return maker.resolve(str(ROOT / "workflows/structures/Mg-MOF-74.cif"), "MOF")
    if maker.stage == "band":
        band = {"kind": "vacancy", "structure": AseAtomsAdaptor.get_structure(cu)}
        return maker.resolve(band, "hop")
    return resolve_input(cu, "Cu")


def _check_one_changed_setting(section, tmp_path):
    """The check of the test below, for one section."""
    from sevenomni_core import load_model
    from sevenomni_flows.jobs.base import maker_settings
    from sevenomni_flows.jobs.settings import RENAMED

    pot = load_model("7net-0", device="cpu")
    default = RunSpec.model_validate({}).maker(section)
    again = RunSpec.model_validate({}).maker(section)
    item = _stage_input(default, tmp_path)
    old = {t.key for t in default.targets(item, pot, None)}
    assert old and old == {t.key for t in again.targets(item, pot, None)}
    wider = load_model("7net-0", device="cpu", dtype="float64")
    assert not old & {t.key for t in default.targets(item, wider, None)}, "dtype"
    settings = maker_settings(default)
    assert (not settings) == (section in NO_SETTINGS), settings
    if not settings:
        return
    # a group that never had flat names (gruneisen's relax) by its full key
    flat = settings | {
        f"{group}.{key}": value
        for group, values in settings.items()
        if isinstance(values, dict)
        for key, value in values.items()
    }
    names = ("fmax", "timestep", "displacement", "max_insertions", "hull_entries")
    name = next(k for k in (*names, "relax.fmax") if k in flat)
    value = flat[name]
    if name == "hull_entries":
        (tmp_path / "entries.json").write_text("[]")
        changed_value = str(tmp_path / "entries.json")
    else:
        changed_value = value * 2 if isinstance(value, int) else value * 1.5
    # the key keeps a grouped setting's old flat name: set it where it lives
    path = RENAMED.get(type(default).__name__, {}).get(name, name).split(".")
    given = {path[-1]: changed_value}
    for part in reversed(path[:-1]):
        given = {part: given}
    changed = RunSpec.model_validate({section: given}).maker(section)
    assert maker_settings(changed) != settings
    new = {t.key for t in changed.targets(_stage_input(changed, tmp_path), pot, None)}
    assert new and not old & new, name


@pytest.mark.parametrize("section", list(makers()))
def test_one_changed_setting_changes_the_key(section, tmp_path):
    """For every registered property, on an input of its stage (a crystal, a
    framework, a band): the same settings give the same keys; a float64
    model gives new keys; changing one setting of its spec section (its
    force threshold, time step, displacement, most insertions or extra hull
    entries) gives new keys.  Only ``static`` has no setting of its own."""
    _check_one_changed_setting(section, tmp_path)


@pytest.mark.parametrize(
    ("section", "dropped"),
    [
        ("static", "dtype"),
        ("elastic", "settings"),
        ("widom", "settings"),
        ("neb", "settings"),
    ],
)
def test_the_key_check_fails_on_a_key_blind_to_what_changed(
    section, dropped, tmp_path, monkeypatch
):
    """Planted: reuse keys that leave out the dtype (static) or the settings
    (a material, a framework and a band property) fail the check above."""
    from sevenomni_flows.jobs import base

    real = base.reuse_key
    monkeypatch.setattr(
        base,
        "reuse_key",
        lambda proto: real({k: v for k, v in proto.items() if k != dropped}),
    )
    with pytest.raises(AssertionError):
        _check_one_changed_setting(section, tmp_path)


def test_every_property_maker_is_exported():
    """``from sevenomni_flows import QhaMaker`` works for every registered
    property, as for the first five."""
    import sevenomni_flows

    for cls in makers().values():
        assert getattr(sevenomni_flows, cls.__name__, None) is cls, cls.__name__
        assert cls.__name__ in sevenomni_flows.__all__
