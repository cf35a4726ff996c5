"""NEB bands through a spec: one document per band, bad bands fail alone, reuse."""

import json
import textwrap

import pytest
from ase.build import bulk
from ase.io import write

from sevenomni_flows.cli import main
from sevenomni_flows.properties.neb import NebMaker

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_neb_spec_bad_bands_fail_alone_and_rerun_reuses(tmp_path, capsys):
    """A vacancy hop completes with a symmetric profile; a surface without the
    asked site, end points with different atoms and a missing file each end
    in one failed document naming the fault; the exit code says so; a rerun
    reuses the completed band and recomputes only the failed ones."""
    write(tmp_path / "two.xyz", bulk("Cu", cubic=True))
    write(tmp_path / "three.xyz", bulk("Cu", cubic=True) * (1, 1, 2))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            """
            model: 7net-0
            device: cpu
            structures: []
            neb: {n_images: 3, fmax: 0.1, max_steps: 200, min_length: 5.0}
            bands:
              - {kind: vacancy, name: hop, structure: {bulk: Cu, crystal: fcc, a: 3.61}}
              - kind: surface
                name: no fcc on (100)
                structure: {bulk: Pt, crystal: fcc, a: 3.92}
                miller: [1, 0, 0]
                adsorbate: O
                start: fcc
                end: hcp
              - {kind: path, name: mismatched, initial: two.xyz, final: three.xyz}
              - {kind: path, name: missing, initial: nope.xyz, final: two.xyz}
            """
        )
    )
    store = str(tmp_path / "results")
    assert main(["run", str(spec), "--store", store]) == 1
    out = capsys.readouterr().out
    assert "1 completed, 3 failed, 0 skipped, 0 missing" in out
    main(["query", "--store", store, "--format", "json"])
    rows = {r["label"]: r for r in json.loads(capsys.readouterr().out)}
    hop = rows["hop"]
    assert hop["state"] == "completed" and hop["converged"]
    # a hop between equivalent sites: forward and reverse barriers agree
    assert hop["barrier"] == pytest.approx(hop["reverse_barrier"], abs=0.01)
    assert 0.2 < hop["barrier"] < 1.5
    assert "no 'fcc' site on this surface" in rows["no fcc on (100)"]["error"]
    assert "end points have 4 and 8 atoms" in rows["mismatched"]["error"]
    assert "nope.xyz" in rows["missing"]["error"]
    assert main(["run", str(spec), "--store", store]) == 1
    assert "1 results reused" in capsys.readouterr().out


def test_neb_maker_refuses_bad_settings():
    with pytest.raises(ValueError, match="interpolation must be 'idpp' or 'linear'"):
        NebMaker(interpolation="spline")
    with pytest.raises(ValueError, match=r"n_images and neb\.max_steps"):
        NebMaker(n_images=0)


def test_one_changed_neb_setting_changes_the_key():
    """The reuse key follows every result-changing setting and the band."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from sevenomni_core import load_model

    pot = load_model("7net-0", device="cpu")
    band = {"kind": "vacancy", "structure": AseAtomsAdaptor.get_structure(bulk("Cu"))}

    def key(maker, b=band):
        return maker.targets(maker.resolve(b, "hop"), pot, None)[0].key

    base = key(NebMaker(min_length=5.0))
    assert key(NebMaker(min_length=5.0)) == base
    assert key(NebMaker(min_length=5.0, fmax=0.1)) != base
    assert key(NebMaker(min_length=5.0, n_images=3)) != base
    other = dict(band, structure=AseAtomsAdaptor.get_structure(bulk("Cu", a=3.7)))
    assert key(NebMaker(min_length=5.0), other) != base
