"""Registry entry for the `numpy` target."""

from codegen.numpy import emit as _emit


class NumpyTarget:
    """Standalone NumPy reference: `<name>.py` (numpy only) + `<name>.npz`."""

    name = "numpy"

    def emit(self, module, out_dir):
        return _emit.emit(module, out_dir)

    def load(self, module):
        """In-process predictor (same generated program as the emitted file)."""
        return _emit.load(module)


TARGET = NumpyTarget()
