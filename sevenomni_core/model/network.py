"""The SevenNet network, assembled from a :class:`ModelConfig`.

Submodules carry the names SevenNet gives them (``edge_embedding``,
``onehot_to_feature_x``, ``{t}_self_connection_intro``,
``{t}_self_interaction_1``, ``{t}_convolution``, ``{t}_self_interaction_2``,
``{t}_equivariant_gate``, ``reduce_input_to_hidden``,
``reduce_hidden_to_energy``, ``rescale_atomic_energy``), so that state dicts
are interchangeable with the reference implementation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from e3nn import o3
from e3nn.o3 import FullTensorProduct
from torch import nn

from .. import _keys as K
from ..data.graph import edge_vectors
from ..nn import (
    BesselBasis,
    Convolution,
    EdgeEmbedding,
    Gate,
    IrrepsLinear,
    LinearSelfConnection,
    PolynomialCutoff,
    Rescale,
    SpeciesSelfConnection,
    XPLORCutoff,
    receiver_slots,
)
from ..options import BACKENDS
from .config import ModelConfig

__all__ = ["BACKENDS", "SevenNet", "infer_irreps_out"]


def _ssp(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.softplus(x) - math.log(2.0)


ACTIVATIONS: dict[str, Callable] = {
    "relu": nn.functional.relu,
    "silu": nn.functional.silu,
    "tanh": torch.tanh,
    "abs": torch.abs,
    "ssp": _ssp,
    "sigmoid": torch.sigmoid,
    "elu": nn.functional.elu,
}


def infer_irreps_out(
    irreps_x: o3.Irreps,
    irreps_filter: o3.Irreps,
    lmax: int | None,
    even_only: bool,
    multiplicity: int | None = None,
) -> o3.Irreps:
    """Irreps reachable by ``x (x) filter``, cut at ``lmax``.

    With ``even_only`` odd-parity irreps are dropped; with ``multiplicity``
    every kept irrep gets that multiplicity.
    """
    full = FullTensorProduct(irreps_x, irreps_filter).irreps_out.simplify()
    kept = []
    for mul, ir in full:
        if lmax is not None and ir.l > lmax:
            continue
        if even_only and ir.p == -1:
            continue
        kept.append((multiplicity or mul, ir))
    return o3.Irreps(kept)


def _pad(t: torch.Tensor) -> torch.Tensor:
    """``t`` with one zero row appended (the value of empty slots)."""
    return torch.cat([t, t.new_zeros(1, *t.shape[1:])])


class SevenNet(nn.Module):
    """A SevenNet E(3)-equivariant interatomic potential.

    Parameters
    ----------
    config : ModelConfig
        The architecture.
    shift, scale : torch.Tensor, optional
        Energy shift and scale tables (see :class:`~sevenomni_core.nn.Rescale`);
        their shapes are taken from a checkpoint when one is loaded.
    """

    def __init__(
        self,
        config: ModelConfig,
        shift: torch.Tensor | None = None,
        scale: torch.Tensor | None = None,
    ):
        super().__init__()
        self.config = cfg = config
        n_species = cfg.num_species
        n_tasks = cfg.num_tasks
        self.cutoff = cfg.cutoff
        z_to_index = np.full(120, -1, dtype=np.int64)
        for z, idx in cfg.type_map.items():
            z_to_index[z] = idx
        self.z_to_index = z_to_index

        if cfg.cutoff_function == "XPLOR":
            envelope = XPLORCutoff(cfg.cutoff, cfg.cutoff_on)
        else:
            envelope = PolynomialCutoff(cfg.cutoff, cfg.poly_cut_p_value)
        lmax_edge = cfg.lmax_edge if cfg.lmax_edge > 0 else cfg.lmax
        self.edge_embedding = EdgeEmbedding(
            BesselBasis(cfg.cutoff, cfg.num_basis, cfg.trainable_basis),
            envelope,
            lmax_edge,
            cfg.is_parity,
            cfg.normalize_sph,
        )
        irreps_filter = self.edge_embedding.irreps_out
        manual = (
            [o3.Irreps(i) for i in cfg.irreps_manual] if cfg.irreps_manual else None
        )
        if manual is not None and len(manual) != cfg.num_convolution_layer + 1:
            raise ValueError(
                f"irreps_manual has {len(manual)} entries; expected "
                f"num_convolution_layer + 1 = {cfg.num_convolution_layer + 1}"
            )
        irreps_x = manual[0] if manual else o3.Irreps(f"{cfg.channel}x0e")
        self.onehot_to_feature_x = IrrepsLinear(
            o3.Irreps(f"{n_species}x0e"),
            irreps_x,
            num_tasks=n_tasks if cfg.task_node_embedding else 0,
            bias=cfg.use_bias_in_linear,
            onehot_input=True,
        )
        act_radial = ACTIVATIONS[cfg.act_radial]
        act_scalar = {k: ACTIVATIONS[v] for k, v in cfg.act_scalar.items()}
        act_gate = {k: ACTIVATIONS[v] for k, v in cfg.act_gate.items()}
        lmax_node = cfg.lmax_node if cfg.lmax_node > 0 else cfg.lmax
        radial_layers = [
            self.edge_embedding.num_basis,
            *list(cfg.weight_nn_hidden_neurons),
        ]
        denominators = cfg.conv_denominator or [1.0] * cfg.num_convolution_layer
        self.num_layers = cfg.num_convolution_layer
        for t in range(cfg.num_convolution_layer):
            last = t == cfg.num_convolution_layer - 1
            even_only = last
            lmax_t = 0 if last else lmax_node
            if manual is None:
                irreps_out = infer_irreps_out(
                    irreps_x, irreps_filter, lmax_t, even_only, cfg.channel
                )
            else:
                irreps_out = manual[t + 1]
            irreps_tp = infer_irreps_out(
                irreps_x, irreps_filter, irreps_out.lmax, even_only
            )
            gate = Gate(irreps_out, act_scalar, act_gate)
            if cfg.self_connection_type[t] == "linear":
                sc = LinearSelfConnection(irreps_x, gate.irreps_in)
            else:
                sc = SpeciesSelfConnection(irreps_x, n_species, gate.irreps_in)
            self.add_module(f"{t}_self_connection_intro", sc)
            self.add_module(
                f"{t}_self_interaction_1",
                IrrepsLinear(
                    irreps_x,
                    irreps_x,
                    num_tasks=n_tasks if cfg.task_self_inter_intro else 0,
                    bias=cfg.use_bias_in_linear,
                ),
            )
            conv = Convolution(
                irreps_x,
                irreps_filter,
                irreps_tp,
                radial_layers,
                act_radial,
                denominators[t],
                cfg.train_denominator,
            )
            self.add_module(f"{t}_convolution", conv)
            self.add_module(
                f"{t}_self_interaction_2",
                IrrepsLinear(
                    conv.irreps_out,
                    gate.irreps_in,
                    num_tasks=n_tasks if cfg.task_self_inter_outro else 0,
                    bias=cfg.use_bias_in_linear,
                ),
            )
            self.add_module(f"{t}_equivariant_gate", gate)
            irreps_x = gate.irreps_out
        hidden = o3.Irreps(f"{irreps_x.dim // 2}x0e")
        self.reduce_input_to_hidden = IrrepsLinear(
            irreps_x,
            hidden,
            num_tasks=n_tasks if cfg.task_output_block else 0,
            bias=cfg.use_bias_in_linear,
        )
        self.reduce_hidden_to_energy = IrrepsLinear(
            hidden, o3.Irreps("1x0e"), bias=cfg.use_bias_in_linear
        )
        if shift is None:
            shift = (
                torch.zeros(n_tasks, n_species)
                if cfg.task_wise_shift
                else torch.zeros(n_species)
            )
        if scale is None:
            scale = (
                torch.ones(n_tasks, n_species)
                if cfg.task_wise_scale
                else torch.ones(n_species)
            )
        self.rescale_atomic_energy = Rescale(shift, scale, cfg.train_shift_scale)
        # backend kernels per (backend, device, dtype); built on first use and
        # kept out of the module tree, so state dicts do not change
        self._kernels: dict[tuple, nn.Module] = {}

    # -- properties -----------------------------------------------------------
    @property
    def tasks(self) -> list[str]:
        """Task (DFT protocol) names, in index order; empty for single-task models."""
        return self.config.tasks

    @property
    def species(self) -> list[int]:
        """Atomic numbers the model covers."""
        return sorted(self.config.type_map)

    # -- forward --------------------------------------------------------------
    def kernels(self, backend: str, device: torch.device, dtype: torch.dtype):
        """The kernels of ``backend`` on ``device`` in ``dtype`` (None for e3nn)."""
        if backend == "e3nn":
            return None
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
        key = (backend, str(device), dtype)
        if key not in self._kernels:
            from ..nn._cueq import CueKernels

            self._kernels[key] = CueKernels(self, device, dtype)
        return self._kernels[key]

    def atomic_energies(
        self,
        graph: dict[str, torch.Tensor],
        vectors: torch.Tensor,
        reference: bool = False,
        backend: str = "e3nn",
    ) -> torch.Tensor:
        """Per-atom energies ``(N,)`` in eV, given edge vectors ``(E, 3)``.

        With ``reference`` every tensor product runs through e3nn's forward;
        ``backend`` picks the kernels otherwise (see :data:`BACKENDS`).
        """
        species = graph[K.SPECIES]
        edge_index = graph[K.EDGE_INDEX]
        task_atom = graph[K.TASK][graph[K.BATCH]]
        kernels = (
            None if reference else self.kernels(backend, vectors.device, vectors.dtype)
        )
        slots = None
        if kernels is None and not reference:
            # edges grouped by receiver, once for every layer (see Convolution)
            slots = receiver_slots(edge_index[0], species.shape[0])
        if slots is None:
            radial, sh = self.edge_embedding(vectors)
            return self._layers(
                species, task_atom, (sh, radial, edge_index), reference, kernels
            )
        # nodes run in the slots' bucket order until the energies
        atomic = self.slotted_energies(
            vectors,
            slots.edge_of_slot,
            slots.position[edge_index[1]],
            species[slots.order],
            task_atom[slots.order],
            slots.buckets,
        )
        return atomic[slots.position]

    def slotted_energies(
        self,
        vectors: torch.Tensor,
        edge_of_slot: torch.Tensor,
        senders: torch.Tensor,
        species: torch.Tensor,
        task_atom: torch.Tensor,
        buckets: tuple[tuple[int, int], ...],
    ) -> torch.Tensor:
        """Per-atom energies with edges in receiver slots (nodes in bucket order).

        ``vectors (E, 3)`` and ``senders (E,)`` (positions in the bucket
        order) are per edge, ``edge_of_slot`` and ``buckets`` come from
        :func:`~sevenomni_core.nn.receiver_slots`, ``species`` and
        ``task_atom`` are in the bucket order, as are the energies returned.
        """
        radial, sh = self.edge_embedding(vectors)
        # gathered per bucket (a split of the gathered slots would cost a full
        # copy in the backward pass); shared by every layer
        rows = torch.split(edge_of_slot, [nodes * deg for nodes, deg in buckets])
        sh, radial, senders = _pad(sh), _pad(radial), _pad(senders)
        slotted = (
            [sh[r] for r in rows],
            [radial[r] for r in rows],
            [senders[r] for r in rows],
            buckets,
        )
        return self._layers(species, task_atom, slotted, False, None)

    def _layers(
        self,
        species: torch.Tensor,
        task_atom: torch.Tensor,
        edges: tuple,
        reference: bool,
        kernels,
    ) -> torch.Tensor:
        """The embedding, interaction layers and readout: energies ``(N,)``.

        ``edges`` are ``(harmonics, radial, edge_index)`` per edge, or per
        bucket of receiver slots, ``(harmonics, radial, senders, buckets)``
        (see :meth:`~sevenomni_core.nn.Convolution.grouped`).
        """

        def lin(name: str, x: torch.Tensor) -> torch.Tensor:
            module = self._modules[name]
            if reference:
                return module.reference(x, task_atom)
            if kernels is not None:
                return kernels.linear(name, module, x, task_atom)
            return module(x, task_atom)

        x = lin("onehot_to_feature_x", species)
        for t in range(self.num_layers):
            sc = self._modules[f"{t}_self_connection_intro"](x, species, reference)
            x = lin(f"{t}_self_interaction_1", x)
            conv = self._modules[f"{t}_convolution"]
            if len(edges) == 4:
                x = conv.grouped(x, *edges)
            elif kernels is None:
                x = conv(x, *edges, reference)
            else:
                x = kernels.convolution(f"{t}_convolution", conv, x, *edges)
            x = lin(f"{t}_self_interaction_2", x)
            x = self._modules[f"{t}_equivariant_gate"](x + sc, reference)
        x = lin("reduce_input_to_hidden", x)
        x = lin("reduce_hidden_to_energy", x).squeeze(-1)
        return self.rescale_atomic_energy(x, species, task_atom)

    def forward(
        self,
        graph: dict[str, torch.Tensor],
        compute_forces: bool = True,
        compute_stress: bool = True,
        training: bool = False,
        reference: bool = False,
        backend: str = "e3nn",
    ) -> dict[str, torch.Tensor]:
        """Energies, forces and stress of a (batched) graph.

        Forces and the virial come from one gradient of the energy with
        respect to the edge vectors.

        Parameters
        ----------
        graph : dict
            See :mod:`sevenomni_core._keys`.
        compute_forces, compute_stress : bool
            Which derivatives to return.
        training : bool
            Keep the graph of the derivatives (for force losses).
        reference : bool
            Use e3nn's forward for every tensor product (slow; for checks).
        backend : str
            ``"e3nn"`` or ``"cueq"`` kernels (:data:`BACKENDS`); the weights
            and the results are the same.

        Returns
        -------
        dict
            ``energy (B,)``, ``energies (N,)``, and on request ``forces (N, 3)``
            and ``stress (B, 6)`` (ASE order and sign; zero where the volume is 0).
        """
        dtype = self.rescale_atomic_energy.scale.dtype
        vectors = edge_vectors(graph).to(dtype)
        need_grad = compute_forces or compute_stress
        if need_grad:
            vectors.requires_grad_(True)
        atomic = self.atomic_energies(graph, vectors, reference, backend)
        n_graphs = graph[K.NUM_ATOMS].shape[0]
        energy = torch.zeros(n_graphs, dtype=atomic.dtype, device=atomic.device)
        energy = energy.index_add(0, graph[K.BATCH], atomic)
        out = {K.ENERGY: energy, K.ATOMIC_ENERGIES: atomic}
        if not need_grad:
            return out
        (dedr,) = torch.autograd.grad(
            energy.sum(), vectors, create_graph=training, allow_unused=True
        )
        if dedr is None:  # no edges at all
            dedr = torch.zeros_like(vectors)
        i, j = graph[K.EDGE_INDEX]
        n_atoms = atomic.shape[0]
        if compute_forces:
            forces = torch.zeros(n_atoms, 3, dtype=dedr.dtype, device=dedr.device)
            forces = forces.index_add(0, i, dedr).index_add(0, j, -dedr)
            out[K.FORCES] = forces
        if compute_stress:
            virial = vectors.unsqueeze(-1) * dedr.unsqueeze(-2)  # r_a f_b
            voigt = torch.stack(
                [
                    virial[:, 0, 0],
                    virial[:, 1, 1],
                    virial[:, 2, 2],
                    virial[:, 1, 2],
                    virial[:, 2, 0],
                    virial[:, 0, 1],
                ],
                dim=-1,
            )
            per_graph = torch.zeros(n_graphs, 6, dtype=voigt.dtype, device=voigt.device)
            per_graph = per_graph.index_add(0, graph[K.BATCH][i], voigt)
            volume = graph[K.VOLUME].to(voigt.dtype)
            safe = torch.where(volume > 0, volume, torch.ones_like(volume))
            out[K.STRESS] = torch.where(
                (volume > 0).unsqueeze(-1), per_graph / safe.unsqueeze(-1), 0.0
            )
        return out
