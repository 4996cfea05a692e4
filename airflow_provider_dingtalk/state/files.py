"""The default backend: the private state folder of one machine (``state_dir()``), or this process's memory.

Every task process on the machine shares it: files written atomically with mode 0600, read and
rewritten under ``flock`` (:mod:`airflow_provider_dingtalk._filelock`). Other machines do not see it.
With no safe folder (``directory=None``) state lives in this process only.

Files: ``<name>.json`` for a blob or a send window, ``<name>.lock`` for a lock, ``<name>/<item>.json``
for spooled items, ``callback-events.sqlite3`` for handled events.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_dingtalk._filelock import locked, thread_lock, write_private
from airflow_provider_dingtalk.state import StateBackend, WindowState, window_state

if TYPE_CHECKING:
    from airflow_provider_dingtalk.state import EventStore

log = logging.getLogger(__name__)

EVENTS_FILE = "callback-events.sqlite3"


@dataclass
class _Window:
    sends: list[float] = field(default_factory=list)
    blocked_until: float = 0.0


# Per-process state, used when there is no safe state folder to share it through.
_windows: dict[str, _Window] = {}
_windows_guard = threading.Lock()


class FileBackend(StateBackend):
    """State in ``directory`` (shared by this machine's processes), or in memory when it is ``None``."""

    kind = "file"

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"FileBackend({str(self.directory)!r})"

    @property
    def shared(self) -> bool:
        return self.directory is not None

    def lock(self, name: str, *, lease: float, wait: float) -> AbstractContextManager[None]:
        # flock is released by the kernel when its holder dies, and every holder on this machine
        # bounds its own work: no lease or wait is needed.
        if self.directory is None:
            return _held(thread_lock(name))
        path = self.directory / f"{name}.lock"
        path.parent.mkdir(mode=0o700, exist_ok=True)
        return locked(path)

    def get_blob(self, name: str) -> str | None:
        if self.directory is None:
            return None  # the token cache keeps its own per-process copy
        try:
            return (self.directory / f"{name}.json").read_text(encoding="utf-8")
        except OSError:
            return None

    def put_blob(self, name: str, value: str, *, ttl: float) -> None:
        if self.directory is not None:
            write_private(self.directory / f"{name}.json", value)

    def delete_blob(self, name: str, *, if_value: str) -> None:
        if self.get_blob(name) == if_value:
            assert self.directory is not None
            (self.directory / f"{name}.json").unlink(missing_ok=True)

    def window(self, name: str, *, now: float, limit: int, span: float, take: bool) -> WindowState:
        with self._window(name, write=take) as state:
            state.sends = sorted(t for t in state.sends if t > now - span)
            found = window_state(state.sends, state.blocked_until, now=now, limit=limit, span=span)
            if take and found.free > 0:
                state.sends.append(now)
                return WindowState(found.free, found.next_slot_at, found.blocked_until, taken=True)
            return found

    def block(self, name: str, *, now: float, until: float) -> None:
        with self._window(name, write=True) as state:
            state.blocked_until = max(state.blocked_until, until)

    @contextlib.contextmanager
    def _window(self, name: str, *, write: bool) -> Iterator[_Window]:
        if self.directory is None:
            with thread_lock(name), _windows_guard:
                yield _windows.setdefault(name, _Window())
            return
        path = self.directory / f"{name}.json"
        with locked(self.directory / f"{name}.lock"):
            state = _read_window(path)
            yield state
            if write:
                try:
                    write_private(
                        path, json.dumps({"sends": state.sends, "blocked_until": state.blocked_until})
                    )
                except OSError as exc:  # pacing is a courtesy; never fail a send over it
                    log.warning("Could not write the custom robot pacing file: %s", exc)

    # -- the alert spool: one file per item; dot files are writes in progress -----------------------

    def _spool(self, name: str) -> Path:
        assert self.directory is not None, "no spool without a state folder"
        return self.directory / name

    def spool_add(self, name: str, item: str, value: str, *, ttl: float) -> None:
        folder = self._spool(name)
        folder.mkdir(mode=0o700, exist_ok=True)
        write_private(folder / f"{item}.json", value)

    def spool_items(self, name: str) -> list[tuple[str, str]]:
        found = []
        for path in sorted(self._spool(name).glob("[0-9]*.json")):
            try:
                found.append((path.stem, path.read_text(encoding="utf-8")))
            except OSError:
                continue  # removed by another drain since the listing
        return found

    def spool_has(self, name: str, item: str) -> bool:
        return (self._spool(name) / f"{item}.json").exists()

    def spool_remove(self, name: str, item: str) -> None:
        (self._spool(name) / f"{item}.json").unlink(missing_ok=True)

    def event_store(self, *, lease: float, clock: Callable[[], float]) -> EventStore:
        from airflow_provider_dingtalk.events.dedup import DedupStore

        path = self.directory / EVENTS_FILE if self.directory is not None else None
        return DedupStore(path, lease=lease, clock=clock)


@contextlib.contextmanager
def _held(lock: threading.Lock) -> Iterator[None]:
    with lock:
        yield


def _read_window(path: Path) -> _Window:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _Window(
            sends=[float(t) for t in data["sends"]], blocked_until=float(data.get("blocked_until", 0))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return _Window()  # missing or damaged: start a fresh window
