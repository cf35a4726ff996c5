"""The MD Maker and spec: documents, stability analysis, failures, reuse."""

import json
import textwrap

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_flows.cli import main
from sevenomni_flows.jobs import ModelSettings
from sevenomni_flows.properties.md import dynamics
from sevenomni_flows.properties.md.maker import MDMaker, supercell_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rdf_tells_a_crystal_from_a_gas():
    """The same crystal, thermally rattled, keeps its RDF; the same atoms as a
    dense random liquid (no pair closer than 1.9 Å) do not."""
    crystal = bulk("Cu", cubic=True) * (3, 3, 3)
    hot = []
    for seed in range(3):
        frame = crystal.copy()
        frame.rattle(0.1, seed=seed)
        hot.append(frame)
    rng = np.random.default_rng(0)
    side = crystal.cell[0, 0]
    points = []
    while len(points) < len(crystal):
        p = rng.random(3) * side
        d = np.array(points or [p + side / 2]) - p
        d -= np.round(d / side) * side
        if np.linalg.norm(d, axis=1).min() >= 1.9:
            points.append(p)
    liquid = crystal.copy()
    liquid.positions = np.array(points)
    threshold = dynamics.CRYSTALLINE_SIMILARITY
    assert dynamics.rdf_similarity([crystal], hot) > 0.95
    assert dynamics.rdf_similarity([crystal], [liquid]) < threshold - 0.05


def test_diffusion_coefficient_of_a_random_walk():
    """Einstein's relation recovers D of a Brownian walk (within 10 %); atoms
    that only vibrate have none."""
    rng = np.random.default_rng(1)
    d_true = 1e-4  # cm²/s = 1e-3 Å²/fs
    dt = 10.0  # fs between samples
    steps = rng.normal(0, np.sqrt(2 * d_true / dynamics.A2_PER_FS * dt), (400, 500, 3))
    positions = np.cumsum(steps, axis=0)
    time = np.arange(400) * dt
    msd = dynamics.mean_square_displacement(positions, np.ones(500, bool))
    assert dynamics.diffusion_coefficient(time, msd) == pytest.approx(d_true, rel=0.1)
    vibrating = rng.normal(0, 0.1, (400, 500, 3))
    msd = dynamics.mean_square_displacement(vibrating, np.ones(500, bool))
    assert dynamics.diffusion_coefficient(time, msd) is None


def test_supercell_widths():
    """Every perpendicular width of the supercell reaches min_length."""
    atoms = bulk("Cu")  # primitive fcc, widths 2.08 Å
    big = supercell_for(atoms, 8.0)
    cell = big.cell.array
    volume = abs(np.linalg.det(cell))
    widths = [
        volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
        for i in range(3)
    ]
    assert min(widths) >= 8.0 and len(big) == 4**3


def test_md_grows_primitive_cells_by_default():
    """A 1-atom primitive cell is not simulated as given: the default
    min_length (10 Å) repeats it, so temperatures have statistics."""
    from sevenomni_flows.properties.md.maker import supercell_for

    maker = MDMaker()
    assert maker.min_length >= 10.0
    big = supercell_for(bulk("Ag"), maker.min_length)
    assert len(big) >= 64


def test_md_maker_documents_and_a_run_that_blows_up(tmp_path):
    """Two materials at two temperatures: four documents from one batched call.
    The documents agree with their trajectory files; the run at 10^7 K blows up
    and fails alone with its reason; a bad setting is refused by name."""
    maker = MDMaker(
        settings=ModelSettings("7net-0", device="cpu"),
        temperatures=[300.0, 1e7],
        steps=30,
        interval=5,
        min_length=0.0,  # the cubic cells as given
        trajectory_dir=str(tmp_path / "traj"),
        plot_dir=str(tmp_path / "plots"),
    )
    structures = [
        AseAtomsAdaptor.get_structure(bulk("Cu", cubic=True)),
        AseAtomsAdaptor.get_structure(bulk("Si", cubic=True)),
    ]
    docs = maker.run(structures, ["Cu", "Si"])
    assert len(docs) == 4
    by = {(d.label, d.temperature): d for d in docs}
    for label in ("Cu", "Si"):
        cold, hot = by[label, 300.0], by[label, 1e7]
        assert cold.state == "completed", cold.error
        assert hot.state == "failed" and "blew up at step" in hot.error
        assert len({cold.key, hot.key}) == 2
        frames = read(cold.trajectory, ":")
        assert len(frames) == len(cold.time) == 7
        temps = [f.get_temperature() for f in frames]
        np.testing.assert_allclose(cold.temperatures, temps, rtol=1e-8)
        assert cold.mean_temperature == pytest.approx(np.mean(temps[3:]))
        assert cold.still_crystalline is True and cold.rdf_similarity > 0.8
        assert cold.diffusion_coefficient is None  # only vibrating
        assert cold.volume_change == 0.0  # NVT
        assert cold.plots and cold.plots[0].endswith("K.png")
    with pytest.raises(ValueError, match=r"md\.temperatures: must be >= 0 K"):
        MDMaker(temperatures=[-1.0])
    with pytest.raises(ValueError, match=r"md\.ensemble: unknown ensemble 'nph'"):
        MDMaker(ensemble="nph")


def test_md_through_a_spec_reuse_and_one_changed_setting(tmp_path, capsys):
    """`properties: [md]` runs after the relaxation; a rerun reuses it; one
    changed MD setting recomputes only the MD documents; query shows them."""
    spec = tmp_path / "spec.yaml"
    body = """
        model: 7net-0
        device: cpu
        relax: {fmax: 0.05, max_steps: 200}
        structures:
          - {bulk: Cu, crystal: fcc, a: 3.61}
        properties: [relax, md]
        md: {temperatures: [300, 600], steps: STEPS, interval: 5}
    """
    spec.write_text(textwrap.dedent(body.replace("STEPS", "20")))
    store = str(tmp_path / "results")
    assert main(["run", str(spec), "--store", store]) == 0
    out = capsys.readouterr().out
    assert "3 completed" in out
    assert main(["run", str(spec), "--store", store]) == 0
    assert "3 results reused" in capsys.readouterr().out
    spec.write_text(textwrap.dedent(body.replace("STEPS", "25")))
    assert main(["run", str(spec), "--store", store]) == 0
    out = capsys.readouterr().out
    assert "1 results reused" in out and "3 completed" in out
    main(["query", '{"property": "md"}', "--store", store, "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["temperature"] for r in rows) == [300, 300, 600, 600]
    assert all(r["still_crystalline"] for r in rows)  # 300 and 600 K: solid Cu
    # one trajectory file per run, beside the plots, none in the store
    # (named by reuse key: the first run's files are not overwritten)
    assert len(list(tmp_path.rglob("trajectories/*.traj"))) == 4


def test_md_key_holds_the_settings_its_ensemble_uses():
    """Barostat settings change an NPT key only; friction not an NVE key."""
    from sevenomni_core import load_model
    from sevenomni_flows.jobs.base import resolve_input

    pot = load_model("7net-0", device="cpu")
    item = resolve_input(AseAtomsAdaptor.get_structure(bulk("Cu")), "Cu")

    def key(**kw):
        return MDMaker(**kw).targets(item, pot, None)[0].key

    npt_only = {"pressure": 1.0, "barostat": "full", "taup": 100.0}
    for name, value in npt_only.items():
        assert key(ensemble="nvt", **{name: value}) == key(ensemble="nvt")
        assert key(ensemble="npt", **{name: value}) != key(ensemble="npt")
    assert key(ensemble="nve", friction=0.1) == key(ensemble="nve")
    assert key(ensemble="nvt", friction=0.1) != key(ensemble="nvt")
    assert len({key(ensemble=e) for e in ("nve", "nvt", "npt")}) == 3
    with pytest.raises(ValueError, match=r"md\.barostat must be one of"):
        MDMaker(barostat="mtk")
