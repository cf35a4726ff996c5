"""Gated nonlinearity: scalars through activations, higher irreps gated."""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import Gate as E3nnGate
from torch import nn

__all__ = ["Gate"]


class Gate(nn.Module):
    """SevenNet's equivariant gate around :class:`e3nn.nn.Gate`.

    Scalars of ``irreps_out`` pass through ``act_scalars`` (by parity); each
    higher irrep is multiplied by its own scalar gate.  The input irreps
    (:attr:`irreps_in`) are the scalars, then the gates, then the gated
    irreps, sorted as e3nn sorts them.

    Parameters
    ----------
    irreps_out : e3nn.o3.Irreps
        The output irreps.
    act_scalars, act_gates : dict
        Activations for even (``"e"``) and odd (``"o"``) scalars and gates.
    """

    def __init__(self, irreps_out: o3.Irreps, act_scalars: dict, act_gates: dict):
        super().__init__()
        parity = {1: "e", -1: "o"}
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l > 0])
        gate_parity = 1 if "0e" in scalars else -1
        gates = o3.Irreps([(m, (0, gate_parity)) for m, _ in gated])
        self.gate = E3nnGate(
            scalars,
            [act_scalars[parity[ir.p]] for _, ir in scalars],
            gates,
            [act_gates[parity[ir.p]] for _, ir in gates],
            gated,
        )
        self.irreps_in = self.gate.irreps_in
        self.irreps_out = self.gate.irreps_out
        cut = self.gate.sc.cut
        slices = cut.irreps_in.slices()
        self._index = [
            torch.cat([torch.arange(slices[i].start, slices[i].stop) for i in ins])
            if len(ins)
            else torch.zeros(0, dtype=torch.long)
            for ins in cut.instructions
        ]
        self._scalars = [
            (m.dim, act)
            for m, act in zip(
                self.gate.act_scalars.irreps_in, self.gate.act_scalars.acts, strict=True
            )
        ]
        self._gates = [
            (m.dim, act)
            for m, act in zip(
                self.gate.act_gates.irreps_in, self.gate.act_gates.acts, strict=True
            )
        ]
        self._gated = [(m.mul, m.ir.dim) for m in self.gate.irreps_gated]

    def forward(self, x: torch.Tensor, reference: bool = False) -> torch.Tensor:
        """Apply the gate to ``(N, irreps_in.dim)`` features."""
        if reference:
            return self.gate(x)
        n = x.shape[0]
        idx_s, idx_g, idx_v = (i.to(x.device) for i in self._index)
        outs = []
        for part, (_, act) in zip(
            torch.split(x[:, idx_s], [d for d, _ in self._scalars], dim=1),
            self._scalars,
            strict=True,
        ):
            outs.append(act(part) if act is not None else part)
        if self._gated:
            gates = [
                act(part) if act is not None else part
                for part, (_, act) in zip(
                    torch.split(x[:, idx_g], [d for d, _ in self._gates], dim=1),
                    self._gates,
                    strict=True,
                )
            ]
            gates = torch.cat(gates, dim=1)
            v = x[:, idx_v]
            g_off = 0
            v_off = 0
            for mul, d in self._gated:
                block = v[:, v_off : v_off + mul * d].reshape(n, mul, d)
                g = gates[:, g_off : g_off + mul].unsqueeze(-1)
                outs.append((block * g).reshape(n, mul * d))
                g_off += mul
                v_off += mul * d
        return torch.cat(outs, dim=1)
