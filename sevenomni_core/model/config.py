"""The architecture of a SevenNet model, read from a checkpoint's config.

:class:`ModelConfig` holds the options that shape the network; it is parsed
from the raw ``config`` dictionary that SevenNet checkpoints carry (every
released version, from 0.9 on) and written back in the same form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelConfig", "UnsupportedModelError"]


class UnsupportedModelError(ValueError):
    """The checkpoint uses an option this implementation does not build."""


def version_tuple(version: str) -> tuple[int, int, int]:
    """``"0.11.2.post1"`` -> ``(0, 11, 2)``: a version as comparable integers."""
    parts = str(version).split(".")[:3]
    return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in parts)


def _as_list(value: Any) -> Any:
    if hasattr(value, "tolist"):  # a tensor or an array
        return value.tolist()
    return value


@dataclass(frozen=True)
class ModelConfig:
    """Architecture options of a SevenNet-family model.

    Attributes mirror the SevenNet config keys they come from (named in
    parentheses where they differ).
    """

    cutoff: float
    type_map: dict[int, int]  # (_type_map) atomic number -> species index
    channel: int = 32
    irreps_manual: list[str] | None = None
    lmax: int = 1
    lmax_edge: int = -1
    lmax_node: int = -1
    is_parity: bool = True
    num_convolution_layer: int = 3
    num_basis: int = 8  # (radial_basis.bessel_basis_num)
    trainable_basis: bool = True  # (radial_basis.trainable_coeff)
    cutoff_function: str = "poly_cut"  # or "XPLOR"
    poly_cut_p_value: float = 6.0
    cutoff_on: float | None = None
    act_radial: str = "silu"
    act_scalar: dict[str, str] = field(
        default_factory=lambda: {"e": "silu", "o": "tanh"}
    )
    act_gate: dict[str, str] = field(default_factory=lambda: {"e": "silu", "o": "tanh"})
    weight_nn_hidden_neurons: list[int] = field(default_factory=lambda: [64, 64])
    conv_denominator: list[float] = field(default_factory=list)
    train_denominator: bool = False
    train_shift_scale: bool = False
    use_bias_in_linear: bool = False
    self_connection_type: list[str] = field(default_factory=list)
    normalize_sph: bool = True  # (_normalize_sph)
    task_map: dict[str, int] = field(default_factory=dict)  # (_modal_map)
    task_node_embedding: bool = False  # (use_modal_node_embedding)
    task_self_inter_intro: bool = False  # (use_modal_self_inter_intro)
    task_self_inter_outro: bool = False  # (use_modal_self_inter_outro)
    task_output_block: bool = False  # (use_modal_output_block)
    task_wise_shift: bool = False  # (use_modal_wise_shift)
    task_wise_scale: bool = False  # (use_modal_wise_scale)
    default_task: str | None = None
    version: str = "0.11.0"

    @property
    def num_species(self) -> int:
        return len(self.type_map)

    @property
    def num_tasks(self) -> int:
        return len(self.task_map)

    @property
    def tasks(self) -> list[str]:
        """Task names in index order."""
        return sorted(self.task_map, key=self.task_map.get)

    @classmethod
    def from_sevenn(cls, raw: dict[str, Any]) -> ModelConfig:
        """Parse a SevenNet checkpoint config (any released version)."""
        cfg = dict(raw)
        version = str(cfg.get("version", "0.9.0"))
        old = version_tuple(version) < (0, 10, 0)
        if cfg.get("interaction_type", "nequip") != "nequip":
            raise UnsupportedModelError(
                f"interaction_type {cfg['interaction_type']!r} is not supported"
            )
        if cfg.get("readout_as_fcn", False):
            raise UnsupportedModelError("readout_as_fcn models are not supported")
        if cfg.get("optimize_by_reduce", True) is False:
            raise UnsupportedModelError("optimize_by_reduce: False is not supported")
        n_conv = int(cfg.get("num_convolution_layer", 3))
        radial = dict(cfg.get("radial_basis", {"radial_basis_name": "bessel"}))
        if radial.get("radial_basis_name", "bessel") != "bessel":
            raise UnsupportedModelError(f"radial basis {radial} is not supported")
        cut = dict(cfg.get("cutoff_function", {"cutoff_function_name": "poly_cut"}))
        cut_name = cut.get("cutoff_function_name", "poly_cut")
        if cut_name not in ("poly_cut", "XPLOR"):
            raise UnsupportedModelError(
                f"cutoff function {cut_name!r} is not supported"
            )
        sc = cfg.get("self_connection_type", "nequip")
        sc = [sc] * n_conv if isinstance(sc, str) else list(sc)
        if any(s not in ("nequip", "linear") for s in sc):
            raise UnsupportedModelError(f"self_connection_type {sc} is not supported")
        denom = _as_list(cfg.get("conv_denominator", 1.0))
        if not isinstance(denom, list):
            denom = [denom] * n_conv
        # strings ('avg_num_neigh') are resolved by training; checkpoints
        # carry the numbers in their state dict.
        denom = [float(d) if isinstance(d, (int, float)) else 1.0 for d in denom]
        if "_type_map" in cfg:
            type_map = {int(z): int(i) for z, i in cfg["_type_map"].items()}
        else:
            from ase.data import atomic_numbers

            species = sorted(cfg["chemical_species"])
            type_map = {atomic_numbers[s]: i for i, s in enumerate(species)}
        use_task = bool(cfg.get("use_modality", False))
        task_map = (
            {str(k): int(v) for k, v in cfg.get("_modal_map", {}).items()}
            if use_task
            else {}
        )
        irreps_manual = cfg.get("irreps_manual", False)
        if old:
            train_denominator = cfg.get(
                "train_denominator", cfg.get("train_avg_num_neigh", False)
            )
        else:
            train_denominator = cfg.get("train_denominator", False)
        return cls(
            cutoff=float(cfg["cutoff"]),
            type_map=type_map,
            channel=int(cfg.get("channel", 32)),
            irreps_manual=list(irreps_manual) if irreps_manual else None,
            lmax=int(cfg.get("lmax", 1)),
            lmax_edge=int(cfg.get("lmax_edge", -1)),
            lmax_node=int(cfg.get("lmax_node", -1)),
            is_parity=bool(cfg.get("is_parity", True)),
            num_convolution_layer=n_conv,
            num_basis=int(radial.get("bessel_basis_num", 8)),
            trainable_basis=bool(radial.get("trainable_coeff", True)),
            cutoff_function=cut_name,
            poly_cut_p_value=float(cut.get("poly_cut_p_value", 6)),
            cutoff_on=float(cut["cutoff_on"]) if cut_name == "XPLOR" else None,
            act_radial=cfg.get("act_radial", "silu"),
            act_scalar=dict(cfg.get("act_scalar", {"e": "silu", "o": "tanh"})),
            act_gate=dict(cfg.get("act_gate", {"e": "silu", "o": "tanh"})),
            weight_nn_hidden_neurons=list(
                cfg.get("weight_nn_hidden_neurons", [64, 64])
            ),
            conv_denominator=denom,
            train_denominator=bool(train_denominator),
            train_shift_scale=bool(cfg.get("train_shift_scale", False)),
            use_bias_in_linear=bool(cfg.get("use_bias_in_linear", False)),
            self_connection_type=sc,
            # configs before 0.10 without the key used unnormalised vectors
            normalize_sph=bool(cfg.get("_normalize_sph", not old)),
            task_map=task_map,
            task_node_embedding=use_task
            and bool(cfg.get("use_modal_node_embedding", False)),
            task_self_inter_intro=use_task
            and bool(cfg.get("use_modal_self_inter_intro", False)),
            task_self_inter_outro=use_task
            and bool(cfg.get("use_modal_self_inter_outro", False)),
            task_output_block=use_task
            and bool(cfg.get("use_modal_output_block", False)),
            task_wise_shift=use_task and bool(cfg.get("use_modal_wise_shift", False)),
            task_wise_scale=use_task and bool(cfg.get("use_modal_wise_scale", False)),
            default_task=cfg.get("default_modal") if use_task else None,
            version=version,
        )
