"""Our kernels against e3nn's own forward, block by block and end to end."""

import pytest
import torch
from e3nn import o3
from structures import slab_with_adsorbate, triclinic
from tiny import tiny_parity_potential

from sevenomni_core import load_model
from sevenomni_core.data import atoms_to_graph
from sevenomni_core.nn import (
    Convolution,
    Gate,
    IrrepsLinear,
    SpeciesSelfConnection,
    receiver_slots,
)

ACTS = {"e": torch.nn.functional.silu, "o": torch.tanh}
IRREPS = [
    ("16x0e+8x1e+4x2e+4x3e", 1),  # SO(3), as 7net-0 and 7net-l3i5
    ("16x0e+8x1o+4x2e+4x3o", -1),  # O(3), as SevenNet-Omni
]


@pytest.mark.parametrize(("irreps", "parity"), IRREPS)
def test_convolution_matches_e3nn(irreps, parity):
    torch.manual_seed(0)
    x_irreps = o3.Irreps(irreps)
    sh = o3.Irreps.spherical_harmonics(3, parity)
    out = o3.Irreps("16x0e+16x0o+8x1o+8x1e+4x2e+4x2o+4x3o+4x3e")
    conv = Convolution(x_irreps, sh, out, [8, 16], torch.nn.functional.silu, 3.0)
    x = torch.randn(30, x_irreps.dim)
    edges = torch.randint(0, 30, (2, 200))
    y = o3.spherical_harmonics(sh, torch.randn(200, 3), True)
    radial = torch.randn(200, 8)
    fast = conv(x, y, radial, edges)
    ref = conv(x, y, radial, edges, reference=True)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    # edges grouped by receiver (one matrix product per path and bucket of
    # nodes), on neighbour counts from 0 to 40 (several buckets)
    counts = torch.tensor([0, 1, 2, 3, 5, 8, 40] * 4 + [7, 7])
    receivers = torch.repeat_interleave(torch.arange(30), counts)
    receivers = receivers[torch.randperm(receivers.shape[0])]
    edges = torch.stack([receivers, torch.randint(0, 30, receivers.shape)])
    y = o3.spherical_harmonics(sh, torch.randn(edges.shape[1], 3), True)
    radial = torch.randn(edges.shape[1], 8)
    ref = conv(x, y, radial, edges, reference=True)
    slots = receiver_slots(edges[0], 30)
    assert len(slots.buckets) > 1
    assert sum(n for n, _ in slots.buckets) == 30

    def grouped(x):
        rows = torch.split(slots.edge_of_slot, [n * d for n, d in slots.buckets])

        def per_bucket(t):
            t = torch.cat([t, t.new_zeros(1, *t.shape[1:])])
            return [t[r] for r in rows]

        senders = per_bucket(slots.position[edges[1]])
        out = conv.grouped(
            x[slots.order], per_bucket(y), per_bucket(radial), senders, slots.buckets
        )
        return out[slots.position]

    torch.testing.assert_close(grouped(x), ref, atol=1e-5, rtol=1e-5)
    x.requires_grad_(True)
    g_ref = torch.autograd.grad(conv(x, y, radial, edges).square().sum(), x)[0]
    g_grp = torch.autograd.grad(grouped(x).square().sum(), x)[0]
    torch.testing.assert_close(g_grp, g_ref, atol=1e-4, rtol=1e-4)


def test_receiver_slots_buckets():
    """Nodes in decreasing neighbour count; buckets trade padding for products."""
    assert receiver_slots(torch.zeros(0, dtype=torch.long), 3) is None
    slots = receiver_slots(torch.tensor([1, 0, 1, 0, 1]), 2)
    assert slots.order.tolist() == [1, 0]
    assert slots.position.tolist() == [1, 0]
    assert slots.buckets == ((1, 3), (1, 2)) or slots.buckets == ((2, 3),)
    # every edge in exactly one slot, under its receiver's position
    receivers = torch.randint(0, 50, (2000,)) ** 2 % 50
    slots = receiver_slots(receivers, 50)
    filled = slots.edge_of_slot[slots.edge_of_slot < 2000]
    assert sorted(filled.tolist()) == list(range(2000))
    start = pos = 0
    for nodes, degree in slots.buckets:
        block = slots.edge_of_slot[start : start + nodes * degree].view(nodes, degree)
        for k in range(nodes):
            node = int(slots.order[pos + k])
            edges = block[k][block[k] < 2000]
            assert (receivers[edges] == node).all()
            assert edges.numel() == int((receivers == node).sum())
        start += nodes * degree
        pos += nodes
    assert start == slots.edge_of_slot.numel()
    # optimal: no worse than one bucket per distinct neighbour count
    from sevenomni_core.nn.convolution import BUCKET_COST

    distinct = torch.unique(torch.bincount(receivers, minlength=50)).numel()
    assert start + BUCKET_COST * len(slots.buckets) <= 2000 + BUCKET_COST * distinct


@pytest.mark.parametrize("tasks", [0, 3])
def test_linear_matches_e3nn(tasks):
    torch.manual_seed(1)
    lin = IrrepsLinear(
        o3.Irreps("16x0e+8x1o+4x2e"), o3.Irreps("8x0e+4x1o+4x2e+2x3o"), tasks
    )
    x = torch.randn(12, lin.irreps_x.dim)
    task = torch.randint(0, max(tasks, 1), (12,))
    torch.testing.assert_close(lin(x, task), lin.reference(x, task))


def test_species_embedding_matches_e3nn():
    lin = IrrepsLinear(o3.Irreps("5x0e"), o3.Irreps("16x0e"), 2, onehot_input=True)
    species = torch.tensor([0, 4, 2, 2, 1])
    task = torch.tensor([1, 0, 1, 1, 0])
    torch.testing.assert_close(lin(species, task), lin.reference(species, task))


@pytest.mark.parametrize(("irreps", "parity"), IRREPS)
def test_gate_and_self_connection_match_e3nn(irreps, parity):
    torch.manual_seed(2)
    gate = Gate(o3.Irreps(irreps), ACTS, ACTS)
    x = torch.randn(10, gate.irreps_in.dim)
    torch.testing.assert_close(gate(x), gate(x, reference=True))
    sc = SpeciesSelfConnection(o3.Irreps(irreps), 6, gate.irreps_in)
    feats = torch.randn(10, sc.irreps_in.dim)
    species = torch.randint(0, 6, (10,))
    torch.testing.assert_close(sc(feats, species), sc(feats, species, reference=True))


@pytest.mark.parametrize("model", ["7net-l3i5", "7net-mf-0", "tiny"])
def test_model_matches_e3nn_forward(model):
    """The whole network with our kernels equals the all-e3nn forward."""
    pot = tiny_parity_potential(torch.float32) if model == "tiny" else load_model(model)
    net = pot.network
    for atoms in (triclinic(), slab_with_adsorbate()):
        if model == "tiny":
            atoms.numbers[:] = [1, 6, 8, 29][0]
            atoms.numbers[::2] = 29
        graph = atoms_to_graph(atoms, net.cutoff, net.z_to_index, 1 if net.tasks else 0)
        fast = net(graph)
        ref = net(graph, reference=True)
        for key in ("energy", "forces", "stress"):
            torch.testing.assert_close(fast[key], ref[key], atol=2e-5, rtol=1e-5)
