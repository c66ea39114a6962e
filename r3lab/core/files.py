"""Reading and writing files safely: atomic writes, a lock for shared files, one writer per output folder, paths held
inside their root, bounded text reads, and file names made from ids. Every room that writes or imports files uses
these (JSON records read with numbered errors: `r3lab.core.records`)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

from .config_file import read_bounded
from .settings import short


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, timeout: float = 120.0):
    """Hold an exclusive lock on `path` (created if missing) while a read-merge-write of a file shared by several
    processes runs, so that no process's update is lost. POSIX `flock`; where it is missing (Windows) no lock.
    Such an update takes milliseconds: a lock still held after `timeout` seconds is a TimeoutError naming it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - there, run the recipe's jobs one at a time (parallel=1)
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{path} stayed locked by another process for {timeout:g} s (an update takes "
                        "milliseconds): a process holding it is stuck; end it, then run again"
                    ) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


LOCK_FILE = ".r3lab.lock"


class FolderInUse(OSError):
    """Another process writes into this folder (it holds the folder's lock)."""


_HELD: dict[str, list] = {}  # resolved folder -> [open lock file, holders in this process, made by us]


class FolderLock:
    """One writer per output folder, as git's index.lock: an exclusive, non-blocking `flock` on
    `<folder>/.r3lab.lock`, so a second process writing there is refused (FolderInUse naming the folder and the
    holder's pid) instead of both running and one silently replacing the other's files. The lock goes with the
    process (the kernel drops it on exit, even a kill -9) and is re-entrant within one process. Without POSIX
    `flock` (Windows) nothing is locked. Use as a context manager, or call `release()`."""

    def __init__(self, folder: str | os.PathLike, what: str = "output folder"):
        self.folder, self.key, self.held = Path(folder), None, False
        try:
            import fcntl
        except ImportError:  # pragma: no cover
            return
        made = not self.folder.exists()  # then a run refused before it wrote anything leaves no empty folder
        self.folder.mkdir(parents=True, exist_ok=True)
        key = str(self.folder.resolve())
        if key not in _HELD:
            _HELD[key] = [_acquire(self.folder / LOCK_FILE, fcntl, what), 0, made]
        _HELD[key][1] += 1
        self.key, self.held = key, True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        entry = _HELD[self.key]
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[self.key]
            f = entry[0]
            with contextlib.suppress(OSError):
                os.unlink(f.name)  # while still locked: a process that opened it before sees a stale inode, retries
            f.close()
            if entry[2]:
                with contextlib.suppress(OSError):  # only when still empty
                    self.folder.rmdir()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        self.release()


def _acquire(path: Path, fcntl, what: str):
    while True:
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise FolderInUse(
                f"{path.parent} is in use: another r3lab process (pid {holder}) is writing this "
                f"{what} and holds {path}. Wait for it to end, or choose another folder"
            ) from None
        try:
            same = os.fstat(f.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file its last holder removed while this process opened it
            f.truncate(0)
            f.write(str(os.getpid()))
            f.flush()
            return f
        f.close()


def remove_entry(path: str | os.PathLike, missing_ok: bool = True) -> None:
    """Delete a file, a folder or a link. A symbolic link is removed itself, never followed, so what it points
    at (a shared image store, another run's checkpoint) stays; inside a folder, links are removed the same way."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    elif not missing_ok:
        raise FileNotFoundError(f"{path} does not exist")


def replace_entries(new: Path, out: Path, names: Sequence[str]) -> None:
    """Move `names` from the complete folder `new` into `out`, the old entries of those names moved aside first
    and deleted only once every new one is in place (`remove_entry`: links are not followed)."""
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out))
    try:
        for name in names:
            if (out / name).exists() or (out / name).is_symlink():
                os.replace(out / name, trash / name)  # renames a link itself
        for name in names:
            if (new / name).exists():
                os.replace(new / name, out / name)
    except BaseException:
        for name in names:  # put the old dataset back where the new one did not arrive
            if (trash / name).exists() or (trash / name).is_symlink():
                if not ((out / name).exists() or (out / name).is_symlink()):
                    os.replace(trash / name, out / name)
        raise
    finally:
        remove_entry(trash)


OUTSIDE_ENV = "R3LAB_ALLOW_OUTSIDE_PATHS"  # =1: a data file may name files outside its own folder (trusted data)


def outside_allowed() -> bool:
    """R3LAB_ALLOW_OUTSIDE_PATHS=1 (any value but empty or 0): data you trust may name any path."""
    return os.environ.get(OUTSIDE_ENV, "").strip() not in ("", "0")


def inside(
    root: str | os.PathLike, rel, what: str = "path", root_name: str = "the folder", fix: str = "move the file in"
) -> Path:
    """The path a data file names, held to its root: the one rule for datasets, benchmarks, `data import` and
    imported runs. `rel` is relative to `root` (or absolute, as official files write it) and must resolve inside
    `root`, links included: `..` climbing out, an absolute path elsewhere, and a link inside `root` that leads
    out of it (shipped in a downloaded archive, say) are each a ValueError naming it, so a crafted record cannot
    make r3lab open /etc/passwd or copy any image into a report. R3LAB_ALLOW_OUTSIDE_PATHS=1 lifts the rule."""
    if not isinstance(rel, str) or not rel.strip() or "\x00" in rel:
        raise ValueError(f"{what} must be a non-empty path, got {short(rel, 1000)}")
    if len(rel) > 4096 or any(len(part.encode()) > 255 for part in Path(rel).parts):
        # past what any file system names (PATH_MAX, NAME_MAX): the OSError would echo it whole
        raise ValueError(f"{what} is not a file name any file system allows: {short(rel)}")
    path = Path(rel) if os.path.isabs(rel) else Path(root) / rel
    if outside_allowed():
        return path
    real, home = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, home]) == home:
        return path
    trust = f"set {OUTSIDE_ENV}=1 for data you trust"
    norm = os.path.normpath(rel)
    if os.path.isabs(rel) or norm == ".." or norm.startswith(".." + os.sep):
        raise ValueError(
            f"{what} {short(rel, 1000)} leaves {root_name} {root}: paths in a data file stay inside it "
            f"({fix}, or {trust})"
        )
    raise ValueError(
        f"{what} {short(rel, 1000)} in {root_name} {root} is a link to {real}, outside it: links in a "
        f"data folder stay inside it too ({fix}, or {trust})"
    )


def given_path(path: str | os.PathLike, what: str = "path") -> Path:
    """`path` as a Path; ValueError for an empty one (Path("") is the current folder: writing or reading there by
    accident, with a shell variable left unset, must not happen)."""
    if path is None or not str(path).strip():
        raise ValueError(f"the {what} is empty: give a folder or file name (an unset shell variable?)")
    return Path(path)


def check_out_dir(out: str | os.PathLike, own: Sequence[str], overwrite: bool = False, what: str = "run") -> Path:
    """Make sure, before any work, that `what` can be written to the folder `out`: a given path, not a file,
    not a folder that already holds one (any of its `own` files) unless `overwrite`, and writable (a real
    write test: as root `os.access` says yes even on a read-only mount). Changes nothing; returns the Path."""
    out = given_path(out, f"folder for the {what}")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file: give a folder for the {what}")
    held = [n for n in own if (out / n).exists() or (out / n).is_symlink()]
    if held and not overwrite:
        raise FileExistsError(
            f"{out} already holds a {what} ({', '.join(held)}): replace it with overwrite=True "
            f"(--overwrite true; its {', '.join(own)} are deleted, nothing else), or choose "
            "another folder"
        )
    parent = out if out.is_dir() else next((p for p in out.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot create {out}: {parent} is a file")
    try:
        tempfile.TemporaryDirectory(prefix=".r3lab-write-check.", dir=parent).cleanup()
    except OSError as e:
        raise PermissionError(f"cannot write the {what} under {parent} ({e}): choose another folder") from None
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_mode(*files: str | os.PathLike) -> None:
    """Give `files` the mode a plain `open` gives under the umask (0644 under 022): transformers writes
    model.safetensors through a 0600 temporary file, which a shared machine's group could then not read."""
    mode = 0o666 & ~_umask()
    for f in files:
        os.chmod(f, mode)


def temp_dir(prefix: str, dir: str | os.PathLike) -> Path:
    """`tempfile.mkdtemp`, but with the mode a plain `mkdir` gives (mkdtemp's is 0700 whatever the umask, so a
    checkpoint or dataset renamed into place from it would be unreadable to the user's group)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    tmp.chmod(0o777 & ~_umask())
    return tmp


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, fsync it, then `os.replace` it into place (with the mode
    a plain `open` gives under the umask, not mkstemp's 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def file_stem(sample_id: str) -> str:
    """A sample id made safe as a file name (ids from other datasets may hold '/' or spaces)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", sample_id)


MAX_TEXT_FILE = 1 << 30  # a log, run or data file read whole (about three times its size in memory)


def read_text(path: str | os.PathLike, limit: int = MAX_TEXT_FILE) -> str:
    """A text file's content; ValueError naming the file and line of the first byte that is not UTF-8 (rather
    than a raw UnicodeDecodeError naming neither), or when the file is larger than `limit` bytes or not a regular
    file (a device such as /dev/zero never ends)."""
    data = read_bounded(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(
            f"{path} is not a UTF-8 text file: line {line} holds the byte {data[e.start]:#04x}; save the file as UTF-8"
        ) from None
