"""sevenomni_core: SevenNet-family equivariant potentials on torch and e3nn."""

__version__ = "0.1.0"
