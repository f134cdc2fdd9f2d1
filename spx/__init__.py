"""spx: sparse CNNs (SparsePixels) from Keras/QKeras to FPGA HLS C++ through an xDSL IR."""

from spx.api import CompiledModel, compile, open_project
from spx.sweep import sweep  # the function shadows its module: import the sweep_* modules directly

__all__ = ["CompiledModel", "compile", "open_project", "sweep"]
