"""A model builder for tests/test_sweep.py that misbehaves inside Dask workers, as points sometimes do.

In a worker (never in the client's up-front checks) and by n_max: 6 announces its process id in
$SPX_SWEEP_FAULTS/victim.pid and waits to be killed by the test (first attempt only); 8 kills its own
worker process on every attempt; 10 hangs (for the per-point timeout); 12 raises. Others build normally.
"""

import os
import time
from pathlib import Path


def _in_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def faulty_model(n_max, bits, threshold):
    import frontends.keras as fk

    if _in_worker():
        faults = Path(os.environ["SPX_SWEEP_FAULTS"])
        if n_max == 6:
            try:
                fd = os.open(faults / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                (faults / "victim.tmp").write_text(str(os.getpid()))
                os.replace(faults / "victim.tmp", faults / "victim.pid")
                time.sleep(300)
            except FileExistsError:
                pass
        if n_max == 8:
            os._exit(3)
        if n_max == 10:
            time.sleep(300)
        if n_max == 12:
            raise RuntimeError("the builder failed\nsecond line")
    return fk.mnist_model(n_max=n_max, bits=bits, threshold=threshold)
