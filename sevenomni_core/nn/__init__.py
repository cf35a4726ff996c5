"""Building blocks of SevenNet models."""

from .convolution import Convolution, ReceiverSlots, receiver_slots
from .edge import EdgeEmbedding
from .gate import Gate
from .linear import IrrepsLinear
from .radial import BesselBasis, PolynomialCutoff, XPLORCutoff
from .rescale import Rescale
from .self_connection import LinearSelfConnection, SpeciesSelfConnection
from .tensor_product import UVUKernel

__all__ = [
    "BesselBasis",
    "Convolution",
    "EdgeEmbedding",
    "Gate",
    "IrrepsLinear",
    "LinearSelfConnection",
    "PolynomialCutoff",
    "ReceiverSlots",
    "Rescale",
    "SpeciesSelfConnection",
    "UVUKernel",
    "XPLORCutoff",
    "receiver_slots",
]
