"""cuEquivariance kernels for the convolutions and linear layers (optional backend).

``cuequivariance-torch`` is imported here only, and only when this backend is
asked for.  The kernels hold no parameters: they read the weights of the e3nn
modules at every call, so checkpoints, state dicts and training are the same
under both backends, and parameter gradients flow through either.

- The convolution is one segmented polynomial that gathers the sender's
  features, multiplies by the edge harmonics and the radial weights, and
  scatters the messages onto the receivers (sevenn's "fused scatter" form;
  NVIDIA's CUDA kernel where it is installed, cuEquivariance's torch
  implementation elsewhere, the CPU included).
- A linear layer is cuEquivariance's linear map over the same irreps as the
  e3nn layer, task one-hot inputs appended as e3nn does.  Layers with biases
  or one-hot species inputs (row look-ups already) keep the e3nn path.

The Clebsch-Gordan convention is e3nn's (Wigner 3j times ``sqrt(2l3+1)``,
normalised per path by cuEquivariance), which is what makes the numbers agree;
see ``tests/core/test_cueq.py``.
"""

from __future__ import annotations

import importlib.util
import itertools
from functools import cache

import numpy as np
import torch
from e3nn import o3
from torch import nn

__all__ = ["CueKernels", "cuda_kernels_installed", "installed"]


def installed() -> bool:
    """Whether ``cuequivariance-torch`` can be imported."""
    return importlib.util.find_spec("cuequivariance_torch") is not None


def cuda_kernels_installed() -> bool:
    """Whether NVIDIA's CUDA kernels for cuEquivariance are installed."""
    ops = importlib.util.find_spec("cuequivariance_ops_torch") if installed() else None
    return ops is not None


@cache
def _group():
    """The O3 group with e3nn's parity and Clebsch-Gordan conventions."""
    import cuequivariance as cue

    class O3e3nn(cue.O3):
        def __mul__(self, other):
            return [O3e3nn(l=ir.l, p=ir.p) for ir in cue.O3.__mul__(self, other)]

        @classmethod
        def clebsch_gordan(cls, rep1, rep2, rep3) -> np.ndarray:
            rep1, rep2, rep3 = cls._from(rep1), cls._from(rep2), cls._from(rep3)
            if rep1.p * rep2.p != rep3.p:
                return np.zeros((0, rep1.dim, rep2.dim, rep3.dim))
            w3j = o3.wigner_3j(rep1.l, rep2.l, rep3.l, dtype=torch.float64)
            return w3j.numpy()[None] * np.sqrt(rep3.dim)

        def __lt__(self, other) -> bool:
            other = self._from(other)
            return (self.l, self.p) < (other.l, other.p)

        @classmethod
        def iterator(cls):
            for degree in itertools.count(0):
                yield O3e3nn(l=degree, p=(-1) ** degree)
                yield O3e3nn(l=degree, p=-((-1) ** degree))

    return O3e3nn


def _irreps(irreps: o3.Irreps):
    import cuequivariance as cue

    return cue.Irreps(_group(), str(irreps))


def _method(device: torch.device) -> str:
    if device.type == "cuda" and cuda_kernels_installed():
        return "uniform_1d"
    return "naive"


class _FusedConvolution(nn.Module):
    """Gather, tensor product with per-edge weights, and scatter, in one call."""

    def __init__(self, conv, device: torch.device, dtype: torch.dtype):
        super().__init__()
        import cuequivariance as cue
        import cuequivariance_torch as cuet

        tp = conv.convolution
        irreps_x = _irreps(tp.irreps_in1)
        muls = np.array([mul for mul, _ in tp.irreps_in1])
        poly = cue.descriptors.channelwise_tensor_product(
            irreps_x, _irreps(tp.irreps_in2), _irreps(tp.irreps_out)
        ).polynomial
        # one uniform channel block (the gcd of the multiplicities) per segment
        block = int(np.gcd.reduce(muls))
        poly = poly.flatten_modes("ijk").squeeze_modes("v")
        poly = poly.apply_fn(lambda op, d: (op, d.split_mode("u", block)))
        kw = {"device": device}
        self.to_ir_mul = cuet.TransposeIrrepsLayout(
            irreps_x, source=cue.mul_ir, target=cue.ir_mul, **kw
        )
        self.to_mul_ir = cuet.TransposeIrrepsLayout(
            _irreps(tp.irreps_out), source=cue.ir_mul, target=cue.mul_ir, **kw
        )
        self.poly = cuet.SegmentedPolynomial(
            poly, method=_method(device), math_dtype=dtype
        ).to(device)

    def forward(
        self,
        x: torch.Tensor,
        edge_sh: torch.Tensor,
        weight: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        xt = self.to_ir_mul(x)
        out = self.poly(
            [weight, xt, edge_sh],
            {1: edge_index[1]},
            {0: xt},
            {0: edge_index[0]},
        )[0]
        return self.to_mul_ir(out)


class CueKernels(nn.Module):
    """cuEquivariance versions of a network's convolutions and linear layers.

    Parameters
    ----------
    network : torch.nn.Module
        A :class:`~sevenomni_core.model.SevenNet`; its
        :class:`~sevenomni_core.nn.Convolution` and
        :class:`~sevenomni_core.nn.IrrepsLinear` children get kernels
        (see the module docstring for which linear layers do).
    device, dtype : torch.device, torch.dtype
        Where the kernels run and their arithmetic precision.
    """

    def __init__(self, network: nn.Module, device: torch.device, dtype: torch.dtype):
        super().__init__()
        if not installed():
            raise ImportError(
                "backend 'cueq' needs cuEquivariance: pip install "
                "cuequivariance-torch (and cuequivariance-ops-torch-cu12 for "
                "its CUDA kernels)"
            )
        import cuequivariance as cue
        import cuequivariance_torch as cuet

        from .convolution import Convolution
        from .linear import IrrepsLinear

        self.convolutions = nn.ModuleDict()
        self.linears = nn.ModuleDict()
        linear_method = "naive" if _method(device) == "naive" else "fused_tp"
        for name, module in network.named_children():
            if isinstance(module, Convolution):
                self.convolutions[name] = _FusedConvolution(module, device, dtype)
            elif (
                type(module) is IrrepsLinear
                and not module.onehot_input
                and module.linear.bias.numel() == 0
            ):
                self.linears[name] = cuet.Linear(
                    _irreps(module.irreps_in),
                    _irreps(module.irreps_out),
                    layout=cue.mul_ir,
                    shared_weights=True,
                    internal_weights=False,
                    device=device,
                    dtype=dtype,
                    math_dtype=dtype,
                    method=linear_method,
                )

    def linear(
        self, name: str, module: nn.Module, x: torch.Tensor, task: torch.Tensor
    ) -> torch.Tensor:
        """``module(x, task)`` through its kernel, when it has one."""
        kernel = self.linears[name] if name in self.linears else None
        if kernel is None:
            return module(x, task)
        if module.num_tasks:
            onehot = nn.functional.one_hot(task, module.num_tasks).to(x.dtype)
            x = torch.cat([x, onehot], dim=1)
        return kernel(x, module.linear.weight.unsqueeze(0))

    def convolution(
        self,
        name: str,
        module: nn.Module,
        x: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        """The same as ``module(x, edge_sh, edge_radial, edge_index)``."""
        weight = module.weight_nn(edge_radial)
        out = self.convolutions[name](x, edge_sh, weight, edge_index)
        return out / module.denominator
