"""The cuEquivariance backend against the e3nn path, on the CPU.

cuEquivariance's torch implementation ("naive" segmented polynomials) runs on
the CPU, so parity is tested here; on a GPU the same polynomials run through
NVIDIA's kernels (``pytest -m gpu``).  Building the CPU kernels takes
10-40 s per model and precision (code generation in cuEquivariance), so the
matrix is: float64 on every shipped checkpoint and the SevenNet-Omni
architecture, float32 on 7net-0 and the Omni architecture.
"""

import numpy as np
import pytest
import torch
from oracle.omni_arch import make_omni_arch_checkpoint
from structures import slab_with_adsorbate, triclinic

pytest.importorskip("cuequivariance_torch")

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.batch import predict
from sevenomni_core.model.potential import resolve_backend
from sevenomni_core.nn._cueq import CueKernels
from sevenomni_core.testing import evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def omni_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("omni") / "checkpoint_omni_arch.pth"
    make_omni_arch_checkpoint(path, seed=11)
    return path


CASES = [
    ("7net-0", None, "float64"),
    ("7net-l3i5", None, "float64"),
    ("7net-mf-0", "R2SCAN", "float64"),
    ("7net-0", None, "float32"),
    ("omni", "oc20", "float64"),
    ("omni", "mpa", "float32"),
]


@pytest.mark.parametrize(("model", "task", "dtype"), CASES)
def test_cueq_matches_e3nn(model, task, dtype, omni_checkpoint):
    """Energy per atom within 1e-5 eV, forces 1e-4 eV/Å, stress 1e-5 eV/Å³,
    on a triclinic bulk cell and a slab with an adsorbate."""
    path = omni_checkpoint if model == "omni" else model
    e3nn = load_model(path, device="cpu", dtype=dtype)
    cueq = load_model(path, device="cpu", dtype=dtype, backend="cueq")
    assert cueq.network is e3nn.network  # one set of weights, two kernel sets
    ref_calc = SevenOmniCalculator(e3nn, task=task)
    cue_calc = SevenOmniCalculator(cueq, task=task)
    assert cue_calc.parameters["backend"] == "cueq"
    for atoms in (triclinic(), slab_with_adsorbate()):
        e0, f0, s0 = evaluate(ref_calc, atoms)
        e1, f1, s1 = evaluate(cue_calc, atoms)
        assert abs(e1 - e0) / len(atoms) < 1e-5
        np.testing.assert_allclose(f1, f0, atol=1e-4, rtol=0)
        np.testing.assert_allclose(s1, s0, atol=1e-5, rtol=0)
        assert np.abs(f0).max() > 1e-3  # forces that can disagree
    # the kernels really ran: every convolution and the dense linear layers
    kernels = cueq.network.kernels("cueq", torch.device("cpu"), e3nn.dtype)
    assert isinstance(kernels, CueKernels)
    assert len(kernels.convolutions) == cueq.network.num_layers
    assert "reduce_input_to_hidden" in kernels.linears


def test_cueq_layers_and_parameter_gradients(omni_checkpoint):
    """Layer by layer (O(3) irreps, 13 task one-hots in the linear layers) and
    for the gradients of the energy with respect to every parameter, which
    training and fine-tuning need."""
    pot = load_model(omni_checkpoint, device="cpu", dtype="float64", cache=False)
    net = pot.network
    kernels = CueKernels(net, torch.device("cpu"), torch.float64)
    gen = torch.Generator().manual_seed(0)
    conv = net._modules["1_convolution"]
    n, e = 7, 30
    x = torch.randn(n, conv.irreps_in.dim, generator=gen, dtype=torch.float64)
    sh = torch.randn(e, conv.convolution.irreps_in2.dim, generator=gen).double()
    radial = torch.rand(e, conv.weight_nn.hs[0], generator=gen).double()
    edges = torch.randint(0, n, (2, e), generator=gen)
    ref = conv(x, sh, radial, edges, reference=True)
    out = kernels.convolution("1_convolution", conv, x, sh, radial, edges)
    # e3nn rounds its Clebsch-Gordan tables through float32: ~1e-8 apart here
    torch.testing.assert_close(out, ref, atol=2e-8, rtol=1e-6)
    assert ref.abs().max() > 0.1
    lin = net._modules["0_self_interaction_2"]
    assert lin.num_tasks == 13
    h = torch.randn(n, lin.irreps_x.dim, generator=gen, dtype=torch.float64)
    task = torch.randint(0, 13, (n,), generator=gen)
    out = kernels.linear("0_self_interaction_2", lin, h, task)
    torch.testing.assert_close(out, lin.reference(h, task), atol=1e-10, rtol=1e-8)

    for p in net.parameters():
        p.requires_grad_(True)
    atoms = triclinic()
    from sevenomni_core.batch.inputs import prepare
    from sevenomni_core.data import collate

    _, graph = prepare(pot, atoms, "mpa", "triclinic")
    batch = collate([graph])
    grads = {}
    for backend in ("e3nn", "cueq"):
        net.zero_grad()
        out = net(batch, compute_forces=False, compute_stress=False, backend=backend)
        energy = out["energy"]
        energy.sum().backward()
        grads[backend] = {
            k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None
        }
    assert grads["cueq"].keys() == grads["e3nn"].keys()
    assert len(grads["e3nn"]) > 10
    for k, g in grads["e3nn"].items():
        torch.testing.assert_close(grads["cueq"][k], g, atol=1e-9, rtol=1e-6, msg=k)


def test_cueq_batched_equals_single_and_state_dict_unchanged():
    """A batch of different structures through cueq equals one by one, and
    building the kernels adds nothing to the checkpoint's state dict."""
    pot = load_model("7net-0", device="cpu", dtype="float64")
    keys = set(pot.network.state_dict())
    structures = [triclinic(), slab_with_adsorbate(), triclinic() * (2, 1, 1)]
    batched = predict(structures, model=pot, backend="cueq")
    assert set(pot.network.state_dict()) == keys
    for atoms, b in zip(structures, batched, strict=True):
        [single] = predict([atoms], model=pot, backend="cueq")
        assert b.energy == pytest.approx(single.energy, abs=1e-8)
        np.testing.assert_allclose(b.forces, single.forces, atol=1e-8)


def test_backend_choice_and_errors():
    """ "auto" keeps e3nn on the CPU; an unknown backend names the valid ones;
    the backend is provenance."""
    cpu = torch.device("cpu")
    assert resolve_backend("auto", cpu) == "e3nn"
    assert resolve_backend("cueq", cpu) == "cueq"
    with pytest.raises(ValueError, match=r"backend 'triton'.*e3nn, cueq"):
        resolve_backend("triton", cpu)
    with pytest.raises(ValueError, match="backend 'cuda'"):
        SevenOmniCalculator("7net-0", device="cpu", backend="cuda")
    pot = load_model("7net-0", device="cpu", backend="cueq")
    assert pot.describe()["backend"] == "cueq"
    assert load_model("7net-0", device="cpu").describe()["backend"] == "e3nn"


def test_backend_is_provenance_not_part_of_the_reuse_key(tmp_path):
    """A flow run with cueq reuses e3nn results and records which kernels ran;
    a spec names the backend, and a wrong one is refused at its line."""
    from sevenomni_flows.jobs import ModelSettings
    from sevenomni_flows.jobs.base import protocol
    from sevenomni_flows.schemas.provenance import Provenance
    from sevenomni_flows.spec import SpecError, load_spec

    keys, provenance = [], []
    for backend in ("e3nn", "cueq"):
        settings = ModelSettings("7net-0", device="cpu", backend=backend)
        pot, task = settings.potential()
        keys.append(protocol("static", pot, task, {}, "abc"))
        provenance.append(Provenance.from_potential(pot, task))
    assert keys[0] == keys[1]
    assert [p.backend for p in provenance] == ["e3nn", "cueq"]
    assert provenance[0].cuequivariance_version is None
    assert provenance[1].cuequivariance_version  # the installed version
    spec = tmp_path / "spec.yaml"
    spec.write_text("model: 7net-0\nbackend: cueq\nstructures: []\n")
    assert load_spec(spec)[0].backend == "cueq"
    spec.write_text("model: 7net-0\nbackend: triton\nstructures: []\n")
    with pytest.raises(SpecError, match=r"spec.yaml:2: backend: Input should be"):
        load_spec(spec)


@pytest.mark.gpu
@pytest.mark.parametrize("model", ["7net-0", "7net-l3i5"])
def test_cueq_cuda_matches_e3nn(model):
    """On CUDA (NVIDIA's kernels where installed), float32: cueq equals e3nn."""
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    structures = [triclinic(), slab_with_adsorbate(), triclinic() * (3, 3, 3)]
    ref = predict(structures, model=model, device="cuda", backend="e3nn")
    out = predict(structures, model=model, device="cuda", backend="cueq")
    for a, b, atoms in zip(ref, out, structures, strict=True):
        assert abs(a.energy - b.energy) / len(atoms) < 1e-5
        np.testing.assert_allclose(b.forces, a.forces, atol=1e-4)
        np.testing.assert_allclose(b.stress, a.stress, atol=1e-5)


def test_cueq_without_the_package_says_what_to_install(monkeypatch):
    """Asking for cueq where cuequivariance-torch is missing names the package;
    "auto" then quietly stays on e3nn."""
    from sevenomni_core.nn import _cueq

    monkeypatch.setattr(_cueq, "installed", lambda: False)
    with pytest.raises(ImportError, match=r"pip install 'sevenomni\[cueq\]'"):
        load_model("7net-0", device="cpu", backend="cueq")
    assert resolve_backend("auto", torch.device("cpu")) == "e3nn"
