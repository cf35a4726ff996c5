"""Reading and writing SevenNet checkpoints (``.pth`` files).

A checkpoint is ``{"config", "model_state_dict", ...}`` as written by
``sevenn``.  Loading rebuilds the network from the stored config and patches
the state dicts of old releases (module names before 0.10, the convolution
weight order and Wigner-3j signs before 0.11).  Saving writes the same keys,
so ``sevenn`` loads our checkpoints too.
"""

from __future__ import annotations

import copy
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from e3nn import o3

from .config import ModelConfig, version_tuple
from .header import CheckpointError, checkpoint_config, file_sha256, read_checkpoint
from .network import SevenNet

__all__ = [
    "CheckpointError",
    "build_model",
    "checkpoint_config",
    "file_sha256",
    "read_checkpoint",
    "save_checkpoint",
]

#: The config version written into our checkpoints: the state-dict layout of
#: sevenn >= 0.11, so no compatibility patch is applied when they are loaded.
SAVED_FORMAT_VERSION = "0.11.0"


_OLD_NAMES = {
    "EdgeEmbedding": "edge_embedding",
    "reducing nn input to hidden": "reduce_input_to_hidden",
    "reducing nn hidden to energy": "reduce_hidden_to_energy",
    "rescale atomic energy": "rescale_atomic_energy",
}
for _i in range(10):
    for _old, _new in (
        ("self connection intro", "self_connection_intro"),
        ("self interaction 1", "self_interaction_1"),
        ("convolution", "convolution"),
        ("self interaction 2", "self_interaction_2"),
        ("equivariant gate", "equivariant_gate"),
    ):
        _OLD_NAMES[f"{_i} {_old}"] = f"{_i}_{_new}"


def _rename_old_modules(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        rest = rest.replace("denumerator", "denominator")
        out[f"{_OLD_NAMES.get(head, head)}.{rest}"] = value
    return out


def _sort_old_convolutions(
    model: SevenNet, state_dict: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Reorder radial-network outputs to the sorted path order of sevenn 0.11.

    Old files also stored some Wigner-3j blocks with the opposite sign; the
    weights of those paths are negated so that the current symbols apply.
    """
    state_dict = dict(state_dict)
    for t in range(model.num_layers):
        name = f"{t}_convolution"
        conv = model._modules[name]
        irreps_x = conv.convolution.irreps_in1
        irreps_f = conv.convolution.irreps_in2
        irreps_mid = conv.convolution.irreps_out
        old = [(i, j, k) for i, j, k, _, _ in conv.instructions_before_sort]
        new = sorted(old, key=lambda ins: ins[2])
        n_last = len(conv.weight_nn.hs) - 2
        key = f"{name}.weight_nn.layer{n_last}.weight"
        weight = state_dict[key]
        blocks: list[torch.Tensor | None] = [None] * len(old)
        col = 0
        for ins in old:
            mul = irreps_x[ins[0]].mul
            block = weight[:, col : col + mul]
            col += mul
            ls = (irreps_x[ins[0]].ir.l, irreps_f[ins[1]].ir.l, irreps_mid[ins[2]].ir.l)
            if min(ls) > 0:
                w3j_key = (
                    f"{name}.convolution._compiled_main_left_right"
                    f"._w3j_{ls[0]}_{ls[1]}_{ls[2]}"
                )
                now = o3.wigner_3j(*ls, dtype=torch.float64)
                stored = state_dict.get(w3j_key)
                if stored is not None:
                    stored = stored.to(now.dtype)
                if stored is not None and not torch.allclose(stored, now, atol=1e-6):
                    if not torch.allclose(stored, -now, atol=1e-6):
                        raise CheckpointError(f"unexpected Wigner-3j block {w3j_key}")
                    block = -block
                if stored is not None:
                    # float64: loading casts it to the module's buffer
                    state_dict[w3j_key] = now
            blocks[new.index(ins)] = block
        state_dict[key] = torch.cat(blocks, dim=1)
    return state_dict


def _patch_state_dict(
    state_dict: dict[str, torch.Tensor], config: ModelConfig, model: SevenNet
) -> dict[str, torch.Tensor]:
    parts = str(config.version).split(".")
    version = version_tuple(config.version)
    dev0 = len(parts) == 4 and parts[3] == "dev0"
    if version < (0, 10, 0):
        state_dict = _rename_old_modules(state_dict)
    if version < (0, 11, 0) or (version == (0, 11, 0) and dev0):
        state_dict = _sort_old_convolutions(model, state_dict)
    return state_dict


def build_model(ckpt: dict[str, Any], source: str = "checkpoint") -> SevenNet:
    """Rebuild the network of a checkpoint dictionary and load its weights."""
    config = checkpoint_config(ckpt, source)
    state = ckpt["model_state_dict"]
    shift = state.get("rescale_atomic_energy.shift")
    scale = state.get("rescale_atomic_energy.scale")
    model = SevenNet(config, shift=shift, scale=scale)
    state = _patch_state_dict(dict(state), config, model)
    missing, unexpected = model.load_state_dict(state, strict=True)
    # buffers e3nn recreates deterministically may be absent from old files
    missing = [k for k in missing if "_w3j_" not in k]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not match the config "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model


def to_sevenn_config(
    model: SevenNet, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A sevenn-style config describing ``model`` exactly (every key explicit)."""
    cfg = model.config
    raw = copy.deepcopy(base) if base else {}
    from ase.data import chemical_symbols

    by_index = sorted(cfg.type_map, key=cfg.type_map.get)
    raw.update(
        {
            "version": SAVED_FORMAT_VERSION,
            "cutoff": cfg.cutoff,
            "channel": cfg.channel,
            "irreps_manual": list(cfg.irreps_manual) if cfg.irreps_manual else False,
            "lmax": cfg.lmax,
            "lmax_edge": cfg.lmax_edge,
            "lmax_node": cfg.lmax_node,
            "is_parity": cfg.is_parity,
            "num_convolution_layer": cfg.num_convolution_layer,
            "radial_basis": {
                "radial_basis_name": "bessel",
                "bessel_basis_num": cfg.num_basis,
                "trainable_coeff": cfg.trainable_basis,
            },
            "cutoff_function": (
                {"cutoff_function_name": "XPLOR", "cutoff_on": cfg.cutoff_on}
                if cfg.cutoff_function == "XPLOR"
                else {
                    "cutoff_function_name": "poly_cut",
                    "poly_cut_p_value": cfg.poly_cut_p_value,
                }
            ),
            "act_radial": cfg.act_radial,
            "act_scalar": dict(cfg.act_scalar),
            "act_gate": dict(cfg.act_gate),
            "weight_nn_hidden_neurons": list(cfg.weight_nn_hidden_neurons),
            "conv_denominator": [
                float(model._modules[f"{t}_convolution"].denominator.item())
                for t in range(model.num_layers)
            ],
            "train_denominator": cfg.train_denominator,
            "train_shift_scale": cfg.train_shift_scale,
            "use_bias_in_linear": cfg.use_bias_in_linear,
            "self_connection_type": list(cfg.self_connection_type),
            "interaction_type": "nequip",
            "readout_as_fcn": False,
            "_normalize_sph": cfg.normalize_sph,
            "_type_map": dict(cfg.type_map),
            "_number_of_species": cfg.num_species,
            "chemical_species": [chemical_symbols[z] for z in by_index],
            "_chemical_species_by_atomic_number": by_index,
            "shift": model.rescale_atomic_energy.shift.detach().cpu().clone(),
            "scale": model.rescale_atomic_energy.scale.detach().cpu().clone(),
            "use_modality": cfg.num_tasks > 0,
        }
    )
    for stale in ("optimize_by_reduce", "train_avg_num_neigh", "avg_num_neigh"):
        raw.pop(stale, None)
    if cfg.num_tasks:
        raw.update(
            {
                "_modal_map": dict(cfg.task_map),
                "_number_of_modalities": cfg.num_tasks,
                "modal_list": cfg.tasks,
                "use_modal_node_embedding": cfg.task_node_embedding,
                "use_modal_self_inter_intro": cfg.task_self_inter_intro,
                "use_modal_self_inter_outro": cfg.task_self_inter_outro,
                "use_modal_output_block": cfg.task_output_block,
                "use_modal_wise_shift": cfg.task_wise_shift,
                "use_modal_wise_scale": cfg.task_wise_scale,
            }
        )
        if cfg.default_task:
            raw["default_modal"] = cfg.default_task
    return raw


def save_checkpoint(
    model: SevenNet,
    path: str | os.PathLike,
    base_config: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Write ``model`` as a sevenn-compatible checkpoint; return its sha256.

    Parameters
    ----------
    model : SevenNet
        The network.
    path : path-like
        Output file.
    base_config : dict, optional
        A config to start from (e.g. the one the model was loaded with), so
        that training metadata is kept; architecture keys are overwritten.
    extra : dict, optional
        More top-level entries (e.g. optimizer state), kept as given.
    """
    from .. import __version__

    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    ckpt = {
        "config": to_sevenn_config(model, base_config),
        "model_state_dict": state,
        "optimizer_state_dict": {},
        "scheduler_state_dict": {},
        "epoch": 0,
        "time": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "hash": uuid.uuid4().hex,
        "sevenomni_version": __version__,
    }
    if extra:
        ckpt.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return file_sha256(path)
