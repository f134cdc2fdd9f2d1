"""spx: sparse CNNs (SparsePixels) from Keras/QKeras to FPGA HLS C++ through an xDSL IR."""

from spx.api import CompiledModel, compile, open_project

__all__ = ["CompiledModel", "compile", "open_project"]
