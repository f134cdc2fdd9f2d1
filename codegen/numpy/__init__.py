"""The `numpy` target: reference kernels (`kernels.py`) and the program generator (`emit.py`)."""
