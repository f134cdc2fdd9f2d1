"""sparsepixels (Keras 3 + HGQ2) front end: reads a `.keras` file with json + h5py (no Keras import)
and lowers it into spx IR with the upstream semantics made explicit (see `lower.py`).

    module = frontends.sparsepixels.load("model.keras", config=None)
    module = frontends.sparsepixels.from_model(keras3_model)     # a live Keras 3 model: saved, then read
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from frontends.sparsepixels.archive import SUPPORTED, is_keras3_archive, read

__all__ = ["load", "from_model", "is_keras3_archive", "is_keras3_model", "SUPPORTED"]


def load(path, config=None):
    """The verified spx module of a sparsepixels `.keras` file (one-line SpxError on bad input)."""
    from frontends.sparsepixels.lower import from_archive
    from spx_ir.text import SpxError

    try:
        archive, h5 = read(path)
        try:
            return from_archive(archive, config)
        finally:
            h5.close()
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OSError) as err:
        # a file whose structure is not what sparsepixels writes: one line, never its contents
        detail = str(err).splitlines()[0][:160] if str(err).strip() else ""
        raise SpxError(f"{path}: error: malformed or unsupported model file ({type(err).__name__}: {detail}); "
                       f"supported: {SUPPORTED}") from None


def is_keras3_model(model) -> bool:
    """A live Keras 3 model (recognised by its class's module, without importing Keras)."""
    module = type(model).__module__ or ""
    return module.startswith("keras.") and hasattr(model, "save") and hasattr(model, "get_config")


def from_model(model, config=None):
    """Lowers a live Keras 3 sparsepixels model: saved with its own `save` to a temporary .keras."""
    with tempfile.TemporaryDirectory(prefix="spx-keras3-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(str(path))
        return load(path, config)
