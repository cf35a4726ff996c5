"""Random-weight SevenNet-Omni-architecture checkpoints built with reference sevenn.

Test-only helper: ``sevenn`` is a test dependency used here as an oracle. The
checkpoint written by :func:`make_omni_arch_checkpoint` has the layout sevenn's
trainer writes (``sevenn.train.trainer.Trainer.write_checkpoint``) and loads
with ``sevenn.calculator.SevenNetCalculator(path, modal=...)`` and
``sevenn.checkpoint.SevenNetCheckpoint(path).build_model()``.
"""

from __future__ import annotations

import copy
import os
import uuid
from datetime import datetime
from typing import Any

import numpy as np
import torch

OMNI_TASKS: list[str] = [
    "mpa", "omat24", "matpes_pbe", "matpes_r2scan", "mp_r2scan", "oc20", "oc22",
    "odac23", "omol25_low", "omol25_high", "spice", "qcml", "pet_mad",
]  # fmt: skip
"""Task (modality) names of SevenNet-Omni, in modal-index order."""

_HIDDEN_IRREPS = "128x0e+64x1o+32x2e+32x3o"


def default_species() -> list[str]:
    """Return the 89 chemical species of the shipped 7net-0 checkpoint.

    Returns
    -------
    list[str]
        Element symbols, sorted alphabetically as sevenn stores them.
    """
    import sevenn._const as const

    cp = torch.load(const.SEVENNET_0_11Jul2024, weights_only=False, map_location="cpu")
    return list(cp["config"]["chemical_species"])


def omni_arch_config(seed: int = 0, species: list[str] | None = None) -> dict[str, Any]:
    """Build a sevenn config dict with SevenNet-Omni hyperparameters.

    Parameters
    ----------
    seed : int, optional
        Seed for the random per-task, per-species shifts and per-species scales.
    species : list[str] | None, optional
        Element symbols; defaults to :func:`default_species`.

    Returns
    -------
    dict[str, Any]
        Complete config (sevenn defaults overridden by the Omni values).
    """
    import sevenn
    import sevenn._const as const
    from sevenn.util import chemical_species_preprocess

    cfg: dict[str, Any] = copy.deepcopy(
        {
            **const.DEFAULT_E3_EQUIVARIANT_MODEL_CONFIG,
            **const.DEFAULT_DATA_CONFIG,
            **const.DEFAULT_TRAINING_CONFIG,
        }
    )
    cfg.update(chemical_species_preprocess(species or default_species()))
    n_species, n_layers = cfg["_number_of_species"], 5
    rng = np.random.default_rng(seed)
    shift = -5.0 + rng.normal(0.0, 1.0, size=(len(OMNI_TASKS), n_species))
    scale = 1.5 + rng.uniform(-0.2, 0.2, size=n_species)
    cfg.update(
        {
            "version": sevenn.__version__,
            "_model_type": "E3_equivariant_model",
            "cutoff": 6.0,
            "channel": 128,
            "lmax": 3,
            "lmax_edge": -1,
            "lmax_node": -1,
            "is_parity": True,
            "num_convolution_layer": n_layers,
            "irreps_manual": ["128x0e", *[_HIDDEN_IRREPS] * 4, "128x0e"],
            "radial_basis": {"radial_basis_name": "bessel", "bessel_basis_num": 8},
            "cutoff_function": {"cutoff_function_name": "XPLOR", "cutoff_on": 5.5},
            "act_radial": "silu",
            "act_scalar": {"e": "silu", "o": "tanh"},
            "act_gate": {"e": "silu", "o": "tanh"},
            "weight_nn_hidden_neurons": [64, 64],
            "conv_denominator": [40.0] * n_layers,
            "train_denominator": False,
            "train_shift_scale": False,
            "use_bias_in_linear": False,
            "readout_as_fcn": False,
            "readout_fcn_hidden_neurons": [30, 30],  # sevenn pops these from
            "readout_fcn_activation": "relu",  # its global defaults on load
            "self_connection_type": "nequip",
            "interaction_type": "nequip",
            "_normalize_sph": True,
            "use_modality": True,
            "use_modal_node_embedding": False,
            "use_modal_self_inter_intro": True,
            "use_modal_self_inter_outro": True,
            "use_modal_output_block": True,
            "use_modal_wise_shift": True,
            "use_modal_wise_scale": False,
            "_modal_map": {task: i for i, task in enumerate(OMNI_TASKS)},
            "_number_of_modalities": len(OMNI_TASKS),
            "modal_list": list(OMNI_TASKS),
            # as the trainer stores them: shift [n_modal, n_species], scale [n_sp]
            "shift": torch.tensor(shift, dtype=torch.float32),
            "scale": scale.tolist(),
            "random_seed": seed,
            "is_ddp": False,
            "rank": 0,
            "local_rank": 0,
            "world_size": 1,
        }
    )
    return cfg


def make_omni_arch_checkpoint(
    path: str | os.PathLike, seed: int = 0, species: list[str] | None = None
) -> dict[str, Any]:
    """Build a random-weight SevenNet-Omni-architecture model and save it.

    Parameters
    ----------
    path : str | os.PathLike
        Destination of the sevenn checkpoint (``.pth``).
    seed : int, optional
        Seeds torch (network weights, e3nn default init) and the shifts/scales.
    species : list[str] | None, optional
        Element symbols; defaults to the 89 species of 7net-0.

    Returns
    -------
    dict[str, Any]
        The config dict stored under ``'config'`` in the checkpoint.
    """
    from sevenn.model_build import build_E3_equivariant_model

    cfg = omni_arch_config(seed, species)
    torch.manual_seed(seed)
    model = build_E3_equivariant_model(copy.deepcopy(cfg))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.99)
    torch.save(
        {
            "config": cfg,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "scheduler_state_dict": scheduler.state_dict(),
            "epoch": 0,
            "time": datetime.now().strftime("%Y-%m-%d %H:%M"),
            "hash": uuid.uuid4().hex,
        },
        os.fspath(path),
    )
    return cfg
