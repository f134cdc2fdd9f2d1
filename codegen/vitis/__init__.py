"""The `vitis` target: a Vitis HLS project (model.py reads the IR, render.py writes the C++, emit.py the
project; include/spx kernel library, templates/), its static check (check.py) and its C simulation
through g++ (csim.py, toolchain.py); target.py is the registry entry."""
