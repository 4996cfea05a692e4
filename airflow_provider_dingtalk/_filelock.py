"""A tiny inter-process lock and a private state directory, shared by the token cache and the robot pacer.

``fcntl.flock`` locks belong to an open file description, so they exclude other processes *and*
other threads of this process that opened the file themselves. Where fcntl is missing (Windows)
the lock is only a thread lock and sharing falls back to this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_thread_locks: dict[str, threading.Lock] = {}
_warned: set[tuple[str, str]] = set()
_thread_locks_guard = threading.Lock()

STATE_DIR_ENV = "AIRFLOW_DINGTALK_STATE_DIR"


def state_dir(override: str | os.PathLike[str] | None = None) -> Path | None:
    """The private folder for shared state, or ``None`` if it can't be made safely.

    Default: ``$AIRFLOW_DINGTALK_STATE_DIR`` or ``<tmp>/airflow-dingtalk-<uid>``, mode 0700. A folder that
    exists but is not ours or is open to others is refused: another user could read or plant tokens.
    """
    raw = override or os.environ.get(STATE_DIR_ENV)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(raw) if raw else Path(tempfile.gettempdir()) / f"airflow-dingtalk-{uid}"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError as exc:
        return _refuse(path, f"it cannot be created or read ({type(exc).__name__}: {exc.strerror})")
    if path.is_symlink():
        return _refuse(path, "it is a symlink")
    if hasattr(os, "getuid") and st.st_uid != uid:
        return _refuse(path, f"it belongs to uid {st.st_uid}, not to this process's uid {uid}")
    if st.st_mode & 0o077:
        return _refuse(path, f"its mode {oct(st.st_mode & 0o777)} lets other users in (0o700 expected)")
    return path


def _refuse(path: Path, why: str) -> Path | None:
    # Falling back to memory works but loses what the folder is for (one token per machine, the
    # receiver's memory of handled events across restarts): say so, once per folder and reason,
    # since every hook asks again.
    if (str(path), why) not in _warned:
        _warned.add((str(path), why))
        log.warning(
            "DingTalk state folder %s is not used because %s; shared state is kept in memory only. "
            "Set $%s to a private folder.",
            path,
            why,
            STATE_DIR_ENV,
        )
    return None


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created 0600) across processes and threads."""
    with thread_lock(str(lock_path)):
        if fcntl is None:  # pragma: no cover - Windows
            yield
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def write_private(path: Path, data: str) -> None:
    """Atomically replace ``path`` with ``data``, readable by the owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", text=True)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def thread_lock(key: str) -> threading.Lock:
    """One lock per key for the threads of this process."""
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())
