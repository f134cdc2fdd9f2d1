"""The one check of events given to a simulator's predict (C simulation, RTL simulation)."""

from __future__ import annotations

import numpy as np


def batch(x, shape: tuple) -> np.ndarray:
    """`x` as a batch (B, *shape) of numbers; one event of `shape` becomes a batch of one.
    Raises ValueError naming the expected shape (NaN/Inf are checked where values are converted)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"predict: input dtype {x.dtype} is not numeric")
    if x.shape == shape:
        x = x[None]
    if x.ndim != len(shape) + 1 or x.shape[1:] != shape:
        dims = ", ".join(map(str, shape))
        raise ValueError(f"predict: expected input shape (B, {dims}) or {shape}, got {x.shape}")
    return x
