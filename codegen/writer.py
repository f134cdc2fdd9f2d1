"""The one writer for every file spx puts in an output directory.

`OutputDir(root)` resolves `root` once; after that every path is given RELATIVE to it and checked:
- each component is a plain file name (`[A-Za-z0-9][A-Za-z0-9._-]*`, no `..`), so nothing a model or IR
  names can reach outside the root;
- no existing component below the root may be a symlink (a planted link is refused, never followed);
- files are written to a temporary file in the same directory and renamed into place (atomic: a reader
  sees the old file or the new one, never half), with mode 0644 (0755 for executables).
Errors are `SpxError` with one line naming the path.

`OutputDir.staged(...)` builds a whole project in a private staging directory inside the root and
moves its entries into place only when every file was written: a failed compile changes nothing.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

from spx_ir.text import SpxError

_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class OutputDir:
    """A directory that spx writes into; see the module docstring for the guarantees."""

    def __init__(self, root):
        root = Path(root)
        if root.is_symlink() and not root.is_dir():
            raise SpxError(f"{root}: error: output path is a dangling symlink")
        self.root = Path(os.path.realpath(root))

    def path(self, relative) -> Path:
        """The checked absolute path of `relative` (which must stay inside the root)."""
        rel = PurePosixPath(str(relative))
        if rel.is_absolute() or not rel.parts:
            raise SpxError(f"{str(relative)!r}: error: not a relative path inside the output directory")
        current = self.root
        for part in rel.parts:
            if not _COMPONENT.fullmatch(part) or part.strip(".") == "":
                raise SpxError(f"{self.root}: error: unsafe path component {part!r} in {str(rel)!r}")
            current = current / part
            if current.is_symlink():
                raise SpxError(f"{current}: error: refusing to write through a symlink")
        return current

    def mkdir(self, relative) -> Path:
        """Creates a directory (and its parents) inside the root; returns its path."""
        target = self.path(relative)
        self.root.mkdir(parents=True, exist_ok=True)
        current = self.root
        for part in PurePosixPath(str(relative)).parts:
            current = current / part
            if current.is_symlink():
                raise SpxError(f"{current}: error: refusing to write through a symlink")
            if current.exists() and not current.is_dir():
                raise SpxError(f"{current}: error: exists and is not a directory")
            current.mkdir(mode=0o755, exist_ok=True)
        return target

    def write_bytes(self, relative, data: bytes, executable: bool = False) -> Path:
        """Writes `data` atomically at `relative`; returns the path."""
        target = self.path(relative)
        parent = PurePosixPath(str(relative)).parent
        if str(parent) not in ("", "."):
            self.mkdir(parent)
        else:
            self.root.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise SpxError(f"{target}: error: exists and is a directory")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o755 if executable else 0o644)
            os.replace(tmp, target)  # rename replaces a link itself, never the file it points to
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def write_text(self, relative, text: str, executable: bool = False) -> Path:
        return self.write_bytes(relative, text.encode("utf-8"), executable)

    def copy(self, source, relative) -> Path:
        """Copies a file spx owns (a template, a header) to `relative`."""
        return self.write_bytes(relative, Path(source).read_bytes(), os.access(source, os.X_OK))

    def remove_tree(self, relative) -> None:
        """Deletes a sub-directory spx wrote (checked like any path; links are refused, not followed)."""
        target = self.path(relative)
        if target.is_dir():
            shutil.rmtree(target)

    def read_text(self, relative, limit: int = 1 << 20) -> str | None:
        """The text of a regular file spx wrote at `relative` (None if absent, a link, too big or not UTF-8)."""
        try:
            target = self.path(relative)
        except SpxError:
            return None
        try:
            if target.is_symlink() or not target.is_file() or target.stat().st_size > limit:
                return None
            return target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    @contextmanager
    def staged(self, last: tuple[str, ...] = ()):
        """Yields an `OutputDir` for a fresh staging directory inside the root. On success its
        top-level entries replace the root's entries of the same names, under a lock on the root
        (concurrent writers commit one after the other); entries named in `last` (the file that
        marks the project complete) are removed first and moved in last. On an exception nothing
        in the root changes, and a root this call created is removed again if still empty."""
        created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=self.root, prefix=".spx-staging-"))
        os.chmod(stage, 0o755)
        try:
            yield OutputDir(stage)
            names = sorted(os.listdir(stage), key=lambda n: (n in last, last.index(n) if n in last else 0, n))
            for name in names:
                self.path(name)  # checked: a plain name
            lock = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                for name in [n for n in last if n in names] + [n for n in names if n not in last]:
                    if os.path.lexists(self.root / name):  # a file, a directory or a link: never followed
                        self._discard(name, stage)
                for name in names:  # the `last` entries sort last
                    os.replace(stage / name, self.root / name)
            finally:
                os.close(lock)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            if created:
                with suppress(OSError):
                    self.root.rmdir()
            raise
        shutil.rmtree(stage, ignore_errors=True)

    def _discard(self, name: str, stage: Path) -> None:
        """Moves the root's entry `name` into the staging directory's trash, deleted with it."""
        trash = stage / ".old"
        trash.mkdir(exist_ok=True)
        os.replace(self.root / name, trash / name)
