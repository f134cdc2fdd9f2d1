"""The `vitis` target: a Vitis HLS project (emit.py, include/spx kernel library, templates/) and its
C simulation through g++ (csim.py, toolchain.py); target.py is the registry entry."""
