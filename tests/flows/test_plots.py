"""Every plot a Maker writes names its material, the model and the task, labels
its axes (the value axis with its unit), keeps its text inside the figure, and
shows the material: real runs on cheap inputs with 7net-mf-0 (task PBE), the
figures caught as they are saved."""

import re
import textwrap
import warnings

import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import write
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from pymatgen.analysis.phase_diagram import PDEntry, PDPlotter, PhaseDiagram
from pymatgen.analysis.wulff import WulffShape
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

import sevenomni_flows.properties.widom.maker as widom_job
from sevenomni_flows import (
    EosMaker,
    MDMaker,
    ModelSettings,
    PhononMaker,
    QhaMaker,
    SlabAdsorptionMaker,
    SlabConvergenceMaker,
    SurfaceEnergyMaker,
    ThermalConductivityMaker,
    WidomMaker,
)
from sevenomni_flows.cli import main
from sevenomni_flows.properties.stability.maker import hull_figure
from sevenomni_flows.properties.surface_energy import wulff_figure

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODEL, TASK = "7net-mf-0", "PBE"
SETTINGS = ModelSettings(MODEL, device="cpu")
CU = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.61))
SI = AseAtomsAdaptor.get_structure(bulk("Si", "diamond", a=5.45))
UNIT = re.compile(r"\(.+\)")  # "energy (eV/atom)"


@pytest.fixture
def saved(monkeypatch):
    """Every figure saved while the test runs."""
    figures = []
    real = Figure.savefig

    def spy(self, *args, **kwargs):
        figures.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return figures


def problems(fig, *names: str) -> list[str]:
    """What a reader of ``fig`` would miss: each of ``names`` absent from its
    titles; a panel with data but no x label (its own, or a panel's it shares
    an axis with) or no y label with a unit in brackets; text cut off at the
    figure's edge."""
    found = []
    titles = " ".join([fig.get_suptitle()] + [ax.get_title() for ax in fig.axes])
    found += [
        f"{name!r} not in the titles {titles!r}" for name in names if name not in titles
    ]
    for k, ax in enumerate(fig.axes):
        if not ax.axison or not ax.has_data():
            continue  # a 3D shape or composition triangle, an empty colorbar
        shares_x = ax.get_shared_x_axes().get_siblings(ax)
        shares_y = ax.get_shared_y_axes().get_siblings(ax)
        if not any(a.get_xlabel() for a in shares_x + shares_y):
            found.append(f"panel {k}: no x label")
        ylabel = next((a.get_ylabel() for a in shares_y if a.get_ylabel()), "")
        if not UNIT.search(ylabel):
            found.append(f"panel {k}: y label {ylabel!r} has no unit")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    inside = fig.get_tightbbox(fig.canvas.get_renderer())
    w, h = fig.get_size_inches()
    tol = 0.5 / fig.dpi
    if (
        inside.x0 < -tol
        or inside.y0 < -tol
        or inside.x1 > w + tol
        or inside.y1 > h + tol
    ):
        found.append(f"text outside the figure: {inside} in a {w} x {h} in figure")
    return found


def _stability(tmp_path):
    Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(2.6), ["Mg", "O"], [[0, 0, 0], [0.5] * 3]
    ).to(filename=str(tmp_path / "MgO_cscl.cif"))
    _cli(
        tmp_path,
        """
        relax: {fmax: 0.05, max_steps: 200}
        properties: [relax, stability]
        structures:
          - {bulk: MgO, crystal: rocksalt, a: 4.21, name: MgO}
          - {file: MgO_cscl.cif, name: MgO (CsCl)}
        """,
    )
    return "MgO (CsCl)"


def _neb(tmp_path):
    _cli(
        tmp_path,
        """
        structures: []
        neb: {n_images: 3, fmax: 0.1, max_steps: 200, min_length: 5.0}
        bands:
          - {kind: vacancy, name: Cu hop, structure: {bulk: Cu, crystal: fcc, a: 3.61}}
        """,
    )
    return "Cu hop"


def _widom(tmp_path):
    framework = tmp_path / "sparse.cif"
    grid = [[x, y, z] for x in (0, 6) for y in (0, 6) for z in (0, 6)]
    write(framework, Atoms("Mg8", positions=grid, cell=[12.0] * 3, pbc=True))
    WidomMaker(
        settings=SETTINGS,
        guests=["CO2"],
        n_insertions=100,
        site_relaxations=0,
        plot_dir=str(tmp_path),
    ).run(str(framework), "sparse")
    return "sparse"


def _cli(tmp_path, body):
    spec = tmp_path / "spec.yaml"
    head = f"model: {MODEL}\ndevice: cpu\n"
    spec.write_text(head + textwrap.dedent(body))
    main(["run", str(spec), "--store", str(tmp_path / "results")])


SLAB = {"layers": 3, "fixed_layers": 1, "supercell": [2, 2], "vacuum": 10.0}
SUPERCELL = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
#: plot type: (a cheap run writing it, the material its title names)
CASES = {
    "eos": (
        lambda d: EosMaker(settings=SETTINGS, plot_dir=d, fmax=0.05).run(CU, "Cu"),
        "Cu",
    ),
    "phonon": (
        lambda d: PhononMaker(settings=SETTINGS, plot_dir=d, min_length=6.0).run(
            SI, "Si"
        ),
        "Si",
    ),
    "surface": (
        lambda d: SurfaceEnergyMaker(
            settings=SETTINGS,
            plot_dir=d,
            miller_indices=[[1, 1, 1], [1, 0, 0], [1, 1, 0]],
            slab={"layers": 4, "fixed_layers": 0, "supercell": [1, 1], "vacuum": 12},
        ).run([CU], ["Cu"]),
        "Cu",
    ),
    "md": (
        lambda d: MDMaker(
            settings=SETTINGS,
            temperatures=[300.0],
            steps=20,
            interval=5,
            min_length=0.0,
            plot_dir=d,
            trajectory_dir=d,
        ).run([CU], ["Cu"]),
        "Cu",
    ),
    "qha": (
        lambda d: QhaMaker(
            settings=SETTINGS,
            supercell=SUPERCELL,
            displacement=0.03,
            t_max=800.0,
            plot_dir=d,
        ).run([CU], ["Cu"]),
        "Cu",
    ),
    "kappa": (
        lambda d: ThermalConductivityMaker(
            settings=SETTINGS,
            supercell=SUPERCELL,
            mesh=[5, 5, 5],
            temperatures=[100.0, 300.0],
            plot_dir=d,
        ).run([SI], ["Si"]),
        "Si",
    ),
    "adsorption": (
        lambda d: SlabAdsorptionMaker(
            settings=SETTINGS,
            adsorbates=["H"],
            miller_indices=[[1, 1, 1]],
            slab=SLAB,
            max_steps=60,
            plot_dir=d,
        ).run(CU, "Cu"),
        "Cu(111)",
    ),
    "slab_convergence": (
        lambda d: SlabConvergenceMaker(
            settings=SETTINGS,
            adsorbates=["H"],
            layers=[2, 3],
            supercells=[[1, 1]],
            free_layers=1,
            max_steps=60,
            plot_dir=d,
        ).run(CU, "Cu"),
        "Cu(111)",
    ),
}
RUNS = {"stability": _stability, "neb": _neb, "widom": _widom}


#: the dearest runs (10-30 s on a loaded 2-core machine)
SLOW = ("kappa", "neb")


@pytest.mark.parametrize(
    "kind",
    [pytest.param(k, marks=[pytest.mark.slow] * (k in SLOW)) for k in [*CASES, *RUNS]],
)
def test_plot_names_material_model_and_task(kind, tmp_path, saved):
    """One real run per plot type: every figure saved names the model and the
    task, one names the material, and each passes ``problems``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind in CASES:
            make, material = CASES[kind]
            make(str(tmp_path))
        else:
            material = RUNS[kind](tmp_path)
    assert saved, f"{kind} saved no figure"
    for fig in saved:
        assert problems(fig, MODEL, f"task {TASK}") == []
    assert any(problems(fig, material) == [] for fig in saved)


def _mgo_hull():
    """Mg-O with rocksalt MgO on the hull and CsCl MgO 0.70 eV/atom above
    it, far past the 0.2 eV/atom that pymatgen's plot shows."""
    cscl = PDEntry(Composition("MgO"), 2 * (-3.0 + 0.70))
    entries = [
        PDEntry(Composition("Mg"), 0.0),
        PDEntry(Composition("O2"), 0.0),
        PDEntry(Composition("MgO"), -6.0),
        cscl,
    ]
    return PhaseDiagram(entries), cscl


def _points(fig) -> list[tuple[float, float]]:
    """Every marker drawn, in data coordinates."""
    return [
        (float(x), float(y))
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_marker() not in ("None", "", None)
        for x, y in zip(*line.get_data(), strict=True)
    ]


def test_hull_shows_the_material_above_pymatgens_cutoff():
    """CsCl MgO, 0.70 eV/atom above the hull, is drawn at (1/2, -2.30 eV/atom)
    and annotated with its energy above the hull; the hull has labelled axes
    and fits its figure.  Planted: pymatgen's PDPlotter, as the plot was
    drawn before, has no such point, and its axis labels and minus signs lie
    outside the figure."""
    diagram, cscl = _mgo_hull()
    fig = hull_figure(diagram, cscl, "MgO (CsCl)", "MgO (CsCl): convex hull, m")
    assert (0.5, pytest.approx(-2.3)) in _points(fig)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "MgO (CsCl)\n0.700 eV/atom above hull" in texts
    assert problems(fig, "MgO (CsCl)") == []
    old = PDPlotter(diagram, backend="matplotlib").get_plot().figure
    old.axes[0].set_title("MgO (CsCl): convex hull, m")
    with pytest.raises(AssertionError):
        assert (0.5, pytest.approx(-2.3)) in _points(old)
    # its axis labels exist but lie outside the figure, with the minus signs
    [cut] = problems(old, "MgO (CsCl)")
    assert cut.startswith("text outside the figure")


def test_wulff_facet_colors_are_visible_on_white():
    """Every facet and legend swatch of the Wulff shape has a luminance below
    0.85, and the legend gives each γ in J/m².  Planted: pymatgen's default
    PuBu colormap paints the lowest-γ facet near white."""

    def palest(ax) -> float:
        colors = [c.get_facecolor()[0] for c in ax.collections]
        colors += [h.get_facecolor() for h in ax.get_legend().legend_handles]
        return max(0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b, _ in colors)

    wulff = WulffShape(
        Lattice.cubic(3.61), [(1, 1, 1), (1, 0, 0), (1, 1, 0)], [1.30, 1.50, 1.55]
    )
    fig = wulff_figure(wulff, "Cu: Wulff shape, m")
    assert palest(fig.axes[0]) < 0.85
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    # pymatgen's facet names are mathtext: ($111$), bars over negative digits
    assert labels == ["($111$): 1.30 J/m²", "($100$): 1.50 J/m²", "($110$): 1.55 J/m²"]
    assert to_rgba(fig.axes[0].collections[0].get_facecolor()[0]) != to_rgba("w")
    with pytest.raises(AssertionError):
        assert palest(wulff.get_plot()) < 0.85


def test_a_title_without_the_model_is_caught(tmp_path, saved, monkeypatch):
    """Planted: the Widom plot titled without the model and task, as it was,
    fails ``problems``."""
    monkeypatch.setattr(widom_job, "model_title", lambda ctx, target=None: "")
    _widom(tmp_path)
    [fig] = saved
    assert problems(fig, "sparse") == []
    found = problems(fig, "sparse", MODEL, f"task {TASK}")
    assert [f.split(" not in")[0] for f in found] == [repr(MODEL), repr(f"task {TASK}")]
