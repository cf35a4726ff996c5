"""Typed, shared settings: one spelling each, old spellings for one release,
partial groups completed from the Maker's defaults, reuse keys unchanged."""

from __future__ import annotations

import textwrap
import warnings

import pytest

from sevenomni_flows.jobs import settings as settings_module
from sevenomni_flows.jobs.base import maker_settings
from sevenomni_flows.jobs.registry import makers
from sevenomni_flows.jobs.settings import RENAMED, RelaxSettings
from sevenomni_flows.spec import SpecError, load_spec

MAKERS = {cls.__name__: cls for cls in makers().values()}

#: ``maker_settings`` of Makers built with defaults, recorded at the commit
#: before the settings were grouped (eeed1ae): the stored results' keys.
BEFORE = {
    "QhaMaker": {
        "linear_strain": [-0.02, 0.03],
        "n_volumes": 7,
        "pressures": [0.0],
        "t_max": 1000.0,
        "t_step": 10.0,
        "eos": "vinet",
        "min_length": 10.0,
        "supercell": None,
        "displacement": 0.01,
        "mesh": 60.0,
        "imaginary_tol": -0.05,
        "fmax": 0.005,
        "max_steps": 300,
        "revision": 1,
    },
    "PhononMaker": {
        "min_length": 10.0,
        "supercell": None,
        "displacement": 0.01,
        "mesh": 60.0,
        "imaginary_tol": -0.05,
        "revision": 1,
    },
    "ThermalConductivityMaker": {
        "supercell": None,
        "phonon_supercell": None,
        "min_length": 10.0,
        "phonon_min_length": None,
        "displacement": 0.03,
        "cutoff_pair_distance": None,
        "mesh": 35.0,
        "temperatures": None,
        "t_min": 100.0,
        "t_max": 1000.0,
        "t_step": 50.0,
        "method": "rta",
        "isotope": False,
        "symmetrize": True,
        "imaginary_tol": -0.05,
        "revision": 1,
    },
    "NebMaker": {
        "n_images": 5,
        "climb": True,
        "fmax": 0.05,
        "max_steps": 500,
        "spring": 0.1,
        "interpolation": "idpp",
        "relax_fmax": 0.02,
        "relax_steps": 500,
        "relax_optimizer": "lbfgs",
        "min_length": 7.0,
        "slab": {
            "preset": "converged",
            "layers": 4,
            "fixed_layers": 2,
            "min_lateral": 8.0,
            "vacuum": 15.0,
        },
    },
}


#: The grouped settings of the other Makers then (the rest of each is
#: unchanged code): their flat names and default values.
BEFORE_GROUPED = {
    "ElasticMaker": {"fmax": 0.005, "max_steps": 300},
    "EosMaker": {"fmax": 0.01, "max_steps": 300},
    "SurfaceEnergyMaker": {"fmax": 0.02, "max_steps": 300},
    "SlabAdsorptionMaker": {
        "fmax": 0.05,
        "max_steps": 300,
        "optimizer": "lbfgs",
        "bulk_fmax": 0.01,
    },
    "MofAdsorptionMaker": {"fmax": 0.05, "max_steps": 500, "optimizer": "lbfgs"},
    "SlabConvergenceMaker": {"fmax": 0.05, "max_steps": 300, "optimizer": "lbfgs"},
    "WidomMaker": {
        "framework_fmax": 0.05,
        "framework_max_steps": 500,
        "guest_fmax": 0.01,
        "guest_max_steps": 500,
        "site_fmax": 0.05,
        "site_max_steps": 100,
    },
}


@pytest.mark.parametrize("name", sorted(BEFORE_GROUPED))
def test_grouped_defaults_keep_their_flat_names_and_values(name):
    settings = maker_settings(MAKERS[name]())
    assert {k: settings.get(k) for k in BEFORE_GROUPED[name]} == BEFORE_GROUPED[name]
    assert not any("." in k for k in settings)  # no new key at its default


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_default_makers_keep_their_reuse_settings(name):
    """Stored results stay reused after the upgrade: a Maker built with its
    defaults gives the settings (so the reuse key) it gave before."""
    assert maker_settings(MAKERS[name]()) == BEFORE[name]


def test_without_the_flat_names_the_keys_would_change(monkeypatch):
    """Plant the naive dump (nested groups in the key): the check fails."""
    monkeypatch.setattr(
        "sevenomni_flows.jobs.base.flat_settings", lambda maker, values: values
    )
    with pytest.raises(AssertionError):
        test_default_makers_keep_their_reuse_settings("QhaMaker")


def test_a_new_setting_at_its_default_leaves_the_key_alone():
    """``relax.optimizer`` did not exist for QHA: at its default it is not in
    the key, set otherwise it is."""
    qha = MAKERS["QhaMaker"]
    assert "relax.optimizer" not in maker_settings(qha())
    assert maker_settings(qha(relax={"optimizer": "lbfgs"}))["relax.optimizer"] == (
        "lbfgs"
    )


def _spec(tmp_path, body: str):
    path = tmp_path / "spec.yaml"
    path.write_text("model: 7net-0\n" + textwrap.dedent(body))
    return path


def test_old_spelling_gives_the_same_maker_and_names_the_new_key(tmp_path):
    """``qha.fmax`` (and friends) build the Maker ``qha.relax.fmax`` builds,
    with a message naming the new key and the old one's line."""
    old = _spec(
        tmp_path,
        """
        qha:
          fmax: 0.01
          t_max: 800.0
          displacement: 0.02
        widom: {site_max_steps: 40}
        neb: {relax_fmax: 0.03}
        """,
    )
    with pytest.warns(FutureWarning) as caught:
        spec_old, _ = load_spec(old)
    messages = [str(w.message) for w in caught]
    assert f"{old}:4: qha.fmax is deprecated: use qha.relax.fmax" in messages
    assert f"{old}:5: qha.t_max is deprecated: use qha.temperatures.t_max" in messages
    assert any(
        "widom.site_max_steps is deprecated: use widom.site_relax.max_steps" in m
        for m in messages
    )
    new = tmp_path / "new"
    new.mkdir()
    new = _spec(
        new,
        """
        qha:
          relax: {fmax: 0.01}
          temperatures: {t_max: 800.0}
          phonon: {displacement: 0.02}
        widom: {site_relax: {max_steps: 40}}
        neb: {relax: {fmax: 0.03}}
        """,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no message for new keys
        spec_new, _ = load_spec(new)
    for section in ("qha", "widom", "neb"):
        assert spec_old.maker(section) == spec_new.maker(section)
    qha = spec_new.maker("qha")
    # the keys not given keep QHA's defaults, not RelaxSettings'
    assert qha.relax == RelaxSettings(fmax=0.01, max_steps=300)
    assert spec_new.maker("neb").relax.optimizer == "lbfgs"


def test_old_and_new_spelling_together_is_an_error(tmp_path):
    path = _spec(tmp_path, "qha: {fmax: 0.01, relax: {fmax: 0.02}}\n")
    with pytest.raises(SpecError, match=r"qha\.fmax and qha\.relax\.fmax both given"):
        load_spec(path)


def test_old_keyword_arguments_still_work_in_python():
    qha = MAKERS["QhaMaker"]
    with pytest.warns(FutureWarning) as caught:
        old = qha(fmax=0.01, displacement=0.02)
    assert {str(w.message) for w in caught} == {
        "qha.fmax is deprecated: use qha.relax.fmax",
        "qha.displacement is deprecated: use qha.phonon.displacement",
    }
    assert old == qha(relax={"fmax": 0.01}, phonon={"displacement": 0.02})
    assert type(old).from_dict(old.as_dict()) == old  # jobflow's serialisation


@pytest.mark.parametrize(
    ("body", "where", "why"),
    [
        ("qha:\n  phonon:\n    displacement: -0.02\n", 4, "qha.phonon.displacement"),
        ("qha:\n  relax: {fmax: 0}\n", 3, "qha.relax.fmax"),
        (
            "thermal_conductivity:\n  temperatures:\n    t_min: -5\n",
            4,
            "thermal_conductivity.temperatures.t_min",
        ),
        (
            "widom:\n  guest_relax: {optimizer: adam}\n",
            3,
            "widom.guest_relax.optimizer",
        ),
        (
            "surface_energy:\n  slab:\n    layers: 4\n    vacuum: -1\n",
            5,
            "surface_energy.slab.vacuum: Input should be greater than 0",
        ),
    ],
)
def test_a_bad_nested_value_names_its_full_key_and_line(tmp_path, body, where, why):
    path = _spec(tmp_path, body)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert f"{path}:{where}: {why}" in str(err.value)


def test_python_mappings_keep_the_makers_other_defaults():
    """``QhaMaker(phonon={"displacement": 0.02})`` changes that key only; a
    partial relax keeps QHA's fmax (0.005), not RelaxSettings' (0.05)."""
    qha = MAKERS["QhaMaker"]
    maker = qha(phonon={"displacement": 0.02}, relax={"max_steps": 500})
    assert maker.phonon == qha().phonon.model_copy(update={"displacement": 0.02})
    assert maker.relax == RelaxSettings(fmax=0.005, max_steps=500)
    with pytest.raises(ValueError, match=r"qha\.phonon\.displacement: .* greater"):
        qha(phonon={"displacement": -1.0})


def test_without_the_makers_defaults_a_partial_group_loses_them(monkeypatch):
    """Plant the type's defaults in place of the Maker's: fmax falls to 0.05."""
    monkeypatch.setattr(settings_module, "over", lambda default, given: given)
    maker = MAKERS["QhaMaker"](relax={"max_steps": 500})
    assert maker.relax.fmax == RelaxSettings().fmax != 0.005


DOCUMENTED_SLAB = {"layers": 6, "fixed_layers": 0, "supercell": (1, 1), "vacuum": 15.0}


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("surface_energy: {}\n", DOCUMENTED_SLAB),  # no slab: at all
        ("surface_energy: {slab: {layers: 4}}\n", {**DOCUMENTED_SLAB, "layers": 4}),
        (  # an alternative replaces the default's choice
            "surface_energy: {slab: {min_lateral: 8.0}}\n",
            {**DOCUMENTED_SLAB, "supercell": None, "min_lateral": 8.0},
        ),
    ],
)
def test_surface_energy_builds_the_documented_default_slab(tmp_path, section, expected):
    """docs/surfaces.md: 6 layers, all relaxed, 1x1, 15 Å vacuum; a slab
    given in part keeps the rest of that default."""
    spec, _ = load_spec(_spec(tmp_path, "properties: [surface_energy]\n" + section))
    slab = spec.maker("surface_energy").slab
    assert {k: getattr(slab, k) for k in expected} == expected


def test_a_partial_slab_failed_before(tmp_path, monkeypatch):
    """The old behaviour (the type's defaults, none) refuses ``{layers: 4}``."""
    monkeypatch.setattr("sevenomni_flows.spec.over", lambda default, given: given)
    path = _spec(tmp_path, "surface_energy: {slab: {layers: 4}}\n")
    with pytest.raises(SpecError, match="fixed_layers"):
        load_spec(path)


def test_every_old_name_is_gone_and_its_new_key_exists():
    """The table is right: each old name is no field any more (or one that
    takes the old value), and each new key is a field of its group."""
    from dataclasses import fields

    from sevenomni_flows.jobs.settings import settings_defaults

    for name, table in RENAMED.items():
        groups = settings_defaults(MAKERS[name])
        names = {f.name for f in fields(MAKERS[name])}
        for old, new in table.items():
            outer, inner = new.split(".")
            assert old not in names or old == outer, (name, old)
            assert inner in type(groups[outer]).model_fields, (name, new)
