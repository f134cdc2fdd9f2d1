"""The values a frontend's lowering passes between layers (shared by every frontend; no Keras import)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Sparse:
    """A sparse image: features [N, C] and 1-based hashes [N, 2] of an H x W image."""
    feat: object
    hash: object
    height: int
    width: int


@dataclass
class Mask:
    """The second output of a sparse layer: the hashes alone, as the Keras layer exposes them."""
    hash: object
    height: int
    width: int
