"""Suite-wide: every Vitis project a test generates passes the static check (codegen/vitis/check.py).

`codegen.vitis.emit.project_files` is the one function that produces a project's files (for `emit`,
for C simulation and for the CLI); wrapped here, each project any test builds is checked before it
is written or compiled, so a kernel change that breaks the structure the cost model assumes fails
the test that generated it. (g++ -std=c++14 -Wall -Wextra -Werror: C simulation compiles with those
flags already.) A test that breaks a project on purpose checks the written files itself.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _static_check_every_project():
    from codegen.vitis import csim, emit
    from codegen.vitis.check import check_files
    from codegen.vitis.model import Model

    original = emit.project_files

    def checked(module, model=None, **kwargs):
        model = model or Model(module)
        files = original(module, model, **kwargs)
        problems = check_files(files, model.name)
        assert not problems, "static check of the generated project:\n" + "\n".join(problems)
        return files

    mp = pytest.MonkeyPatch()
    for namespace in (emit, csim):
        mp.setattr(namespace, "project_files", checked)
    yield
    mp.undo()
