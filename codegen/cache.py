"""The build cache shared by the targets' simulators (g++ C simulation, Verilator RTL simulation).

An entry is a directory `<root>/<kind>/<key>`; `key` is the SHA-256 of a canonical JSON of everything
the caller says determines the entry's content (every generated source's bytes, tool versions, flags,
header digests). An entry holds `manifest.json`: its key and the SHA-256 of every file in it.
- `entry(kind, material, build)` returns a VALID entry: one whose manifest names this key and whose
  files all still have their recorded digests (a truncated or edited artifact is never used).
  Otherwise it builds a new one: under an exclusive lock per key, in a fresh temporary directory that
  is renamed into place only when complete, so concurrent processes never see half an entry.
- Root: $SPX_CACHE, else ~/.cache/spx. A valid entry is used even from a read-only cache; when a build
  is needed and the root is unusable, a private temporary cache is used with one warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

MANIFEST = "manifest.json"
_fallback_root: Path | None = None


def cache_root() -> Path:
    return Path(os.environ.get("SPX_CACHE") or Path.home() / ".cache" / "spx")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_of(material) -> str:
    """SHA-256 of a JSON-serialisable description (bytes values are replaced by their digests)."""
    def plain(value):
        if isinstance(value, (bytes, bytearray)):
            return {"sha256": digest(bytes(value))}
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in sorted(value.items())}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    return digest(json.dumps(plain(material), sort_keys=True).encode())


def _file_digests(directory: Path) -> dict[str, str]:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    return {str(p.relative_to(directory)): digest(p.read_bytes()) for p in files}


def is_valid(path: Path, key: str) -> bool:
    """True if `path` is a complete entry for `key` whose files are unchanged."""
    try:
        if path.is_symlink() or not path.is_dir():
            return False
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
        if manifest.get("key") != key or not isinstance(files, dict):
            return False
        return all((path / name).is_file() and not (path / name).is_symlink()
                   and digest((path / name).read_bytes()) == sha for name, sha in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _usable(root: Path) -> bool:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-")
        probe.close()
        return True
    except OSError:
        return False


def _writable_root() -> Path:
    global _fallback_root
    root = cache_root()
    if _usable(root):
        return root
    if _fallback_root is None:
        _fallback_root = Path(tempfile.mkdtemp(prefix="spx-cache-"))
        print(f"warning: cache directory {root} is not writable; using {_fallback_root} for this run",
              file=sys.stderr)
    return _fallback_root


def entry(kind: str, material, build) -> Path:
    """A valid cache entry for `material`; `build(directory)` fills a new one when needed.

    `build` may raise: nothing is then left in the cache. Returns the entry's directory."""
    key = key_of(material)
    for root in filter(None, (cache_root(), _fallback_root)):
        if is_valid(root / kind / key, key):
            return root / kind / key
    root = _writable_root()
    parent = root / kind
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / key
    with open(parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_valid(final, key):
            return final
        work = Path(tempfile.mkdtemp(dir=parent, prefix=f".{key[:16]}-"))
        os.chmod(work, 0o755)
        try:
            build(work)
            (work / MANIFEST).write_text(json.dumps({"key": key, "files": _file_digests(work)}, indent=1))
            if final.exists() or final.is_symlink():  # an invalid old entry: move it aside, then delete
                stale = Path(tempfile.mkdtemp(dir=parent, prefix=".stale-"))
                os.replace(final, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(work, final)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return final
