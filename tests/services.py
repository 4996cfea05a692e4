"""Real Redis and Postgres servers from Debian's packages, started on loopback with their own data folders.

No system service is used: each server runs as a child of the test (its own process group), on a
free port, with its data in a temporary folder, and is stopped by the fixture that started it.
``scripts/install_services`` installs the packages (CI calls it through ``scripts/test``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _need(binary: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise RuntimeError(f"{binary} is not installed: run scripts/install_services (Debian packages)")
    return found


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(
        f"server not listening on {port} within {timeout} s:\n{log.read_text(errors='replace')}"
    )


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class RedisServer:
    """``redis-server`` on ``127.0.0.1:<port>``, with an append-only file so a restart keeps its keys.

    :param password: ``requirepass``; the URL then carries it, as a deployment's would.
    """

    def __init__(self, *, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="dingtalk-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            _need("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
        ]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        log = self.dir / "redis.log"
        self.proc = subprocess.Popen(
            args, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        _wait_port(self.port, self.proc, log)
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """A Postgres cluster of its own (``initdb``), run as the ``postgres`` user: Postgres refuses root."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dingtalk-pg-"))
        self.proc: subprocess.Popen[bytes] | None = None
        versions = sorted(PG_BIN.glob("*/bin/postgres"))
        if not versions:
            raise RuntimeError("postgresql is not installed: run scripts/install_services (Debian packages)")
        self.bin = versions[-1].parent

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://airflow:airflow@127.0.0.1:{self.port}/airflow"

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []

    def start(self) -> PostgresServer:
        data = self.dir / "data"
        if os.getuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        pw = self.dir / "pw"
        pw.write_text("airflow\n")
        os.chmod(pw, 0o644)
        subprocess.run(
            [*self._as_owner(), str(self.bin / "initdb"), "-D", str(data), "-U", "airflow",
             "--pwfile", str(pw), "-A", "scram-sha-256", "-E", "UTF8"],
            check=True, capture_output=True,
        )  # fmt: skip
        log = self.dir / "postgres.log"
        log.touch()
        if os.getuid() == 0:
            os.chown(log, pwd.getpwnam("postgres").pw_uid, -1)
        self.proc = subprocess.Popen(
            [*self._as_owner(), str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
             "-c", "max_connections=200", "-c", "fsync=off"],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        _wait_port(self.port, self.proc, log)
        deadline = time.monotonic() + 30
        while True:  # listening comes a little before accepting logins
            done = subprocess.run(
                [*self._as_owner(), str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                 "-U", "airflow", "airflow"],
                env={**os.environ, "PGPASSWORD": "airflow"}, capture_output=True,
            )  # fmt: skip
            if done.returncode == 0:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"createdb failed: {done.stderr.decode(errors='replace')}")
            time.sleep(0.2)

    def close(self) -> None:
        _stop(self.proc)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
