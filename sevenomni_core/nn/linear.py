"""Equivariant linear layers, with optional task (and species) one-hot inputs.

The weights live in an :class:`e3nn.o3.Linear`, so their layout and
normalisation are e3nn's and checkpoints are interchangeable with
``sevenn``.  The forward pass is ours: one-hot inputs are applied as row
look-ups instead of dense products, and inputs are split once instead of
sliced per path (e3nn's generated code re-slices, which is costly to
differentiate on the CPU).  :meth:`IrrepsLinear.reference` runs e3nn's own
forward for parity tests.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

__all__ = ["IrrepsLinear"]


class IrrepsLinear(nn.Module):
    """``x -> W x`` per irrep, with the task one-hot appended as scalars.

    Parameters
    ----------
    irreps_in : e3nn.o3.Irreps
        Irreps of the dense input.  With ``onehot_input`` it must be ``Sx0e``
        and the forward pass takes species indices instead of features.
    irreps_out : e3nn.o3.Irreps
        Irreps of the output.
    num_tasks : int
        If > 1, ``num_tasks x 0e`` task one-hot inputs are appended (the
        SevenNet multi-fidelity mechanism); their weights act as task-wise
        biases.
    bias : bool
        e3nn biases on scalar outputs.
    onehot_input : bool
        The input is a one-hot species encoding given as indices.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        num_tasks: int = 0,
        bias: bool = False,
        onehot_input: bool = False,
    ):
        super().__init__()
        self.irreps_x = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.num_tasks = num_tasks if num_tasks > 1 else 0
        self.onehot_input = onehot_input
        irreps_full = self.irreps_x
        if self.num_tasks:
            irreps_full = irreps_full + o3.Irreps(f"{self.num_tasks}x0e")
        self.irreps_in = irreps_full
        self.linear = o3.Linear(irreps_full, self.irreps_out, biases=bias)
        self._plan = []
        offset = 0
        n_x = len(self.irreps_x)
        for ins in self.linear.instructions:
            mul_in, mul_out = ins.path_shape
            self._plan.append(
                (
                    ins.i_in,
                    ins.i_out,
                    offset,
                    mul_in,
                    mul_out,
                    ins.path_weight,
                    ins.i_in >= n_x,
                )
            )
            offset += mul_in * mul_out
        self._splits = [mul_ir.dim for mul_ir in self.irreps_x]

    def forward(
        self, x: torch.Tensor, task: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Apply the layer.

        Parameters
        ----------
        x : torch.Tensor
            Features ``(N, irreps_in.dim)``, or species indices ``(N,)`` with
            ``onehot_input``.
        task : torch.Tensor, optional
            Task index of each row ``(N,)``; required when ``num_tasks > 1``.
        """
        if self.linear.bias.numel() > 0:
            return self.reference(x, task)
        n = x.shape[0]
        weight = self.linear.weight
        if self.onehot_input:
            blocks = [None]
        else:
            blocks = [
                b.reshape(n, mul_ir.mul, mul_ir.ir.dim)
                for b, mul_ir in zip(
                    torch.split(x, self._splits, dim=1), self.irreps_x, strict=True
                )
            ]
        outs: list[torch.Tensor | None] = [None] * len(self.irreps_out)
        for i_in, i_out, off, mul_in, mul_out, pw, is_task in self._plan:
            w = weight[off : off + mul_in * mul_out].view(mul_in, mul_out)
            if is_task:
                y = (w[task] * pw).unsqueeze(-1)
            elif self.onehot_input:
                y = (w[x] * pw).unsqueeze(-1)
            else:
                xb = blocks[i_in]
                if xb.shape[-1] == 1:
                    y = torch.mm(xb.squeeze(-1), w * pw).unsqueeze(-1)
                else:
                    y = torch.einsum("nud,uw->nwd", xb, w * pw)
            prev = outs[i_out]
            outs[i_out] = y if prev is None else prev + y
        dtype = weight.dtype if self.onehot_input else x.dtype
        flat = [
            (
                o.reshape(n, mul_ir.dim)
                if o is not None
                else torch.zeros(n, mul_ir.dim, dtype=dtype, device=x.device)
            )
            for o, mul_ir in zip(outs, self.irreps_out, strict=True)
        ]
        if not flat:
            return torch.zeros(n, 0, dtype=dtype, device=x.device)
        return flat[0] if len(flat) == 1 else torch.cat(flat, dim=1)

    def reference(
        self, x: torch.Tensor, task: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The same map through e3nn's own forward (for parity checks)."""
        if self.onehot_input:
            x = nn.functional.one_hot(x, self.irreps_x.dim).to(self.linear.weight.dtype)
        if self.num_tasks:
            onehot = nn.functional.one_hot(task, self.num_tasks).to(x.dtype)
            x = torch.cat([x, onehot], dim=1)
        return self.linear(x)
