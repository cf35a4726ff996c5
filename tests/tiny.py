"""A small random model with full O(3) parity, for tests that need one."""

from __future__ import annotations

from pathlib import Path

import torch

from sevenomni_core.model import ModelConfig, SevenNet
from sevenomni_core.model.potential import Potential


def tiny_parity_potential(
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    species: tuple[int, ...] = (1, 6, 8, 29),
) -> Potential:
    """Two layers, lmax 2, O(3), nequip self-connection, 3 tasks; H, C, O
    and Cu unless ``species`` (atomic numbers) says otherwise."""
    torch.manual_seed(seed)
    config = ModelConfig(
        cutoff=4.0,
        type_map={z: i for i, z in enumerate(species)},
        channel=8,
        irreps_manual=["8x0e", "8x0e+4x1o+4x1e+2x2e+2x2o", "8x0e"],
        lmax=2,
        is_parity=True,
        num_convolution_layer=2,
        cutoff_function="XPLOR",
        cutoff_on=3.5,
        weight_nn_hidden_neurons=[16],
        conv_denominator=[4.0, 4.0],
        self_connection_type=["nequip", "nequip"],
        task_map={"a": 0, "b": 1, "c": 2},
        task_self_inter_intro=True,
        task_self_inter_outro=True,
        task_output_block=True,
        task_wise_shift=True,
    )
    shift = torch.randn(3, len(species))
    net = SevenNet(config, shift=shift, scale=torch.ones(len(species)) * 1.5)
    net = net.to(dtype).eval()
    return Potential("tiny", Path("tiny"), "0" * 64, net, "a", dtype=dtype)
