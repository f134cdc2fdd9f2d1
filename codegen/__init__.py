"""Code generators: `numpy` (bit-exact reference) and `vitis` (HLS C++), behind one registry."""

from codegen.registry import available_targets, get_target, register_target

__all__ = ["available_targets", "get_target", "register_target"]
