"""Molecular dynamics: the Maker and what a run says about a material."""

from .maker import MDMaker

__all__ = ["MDMaker"]
