"""Token sharing: N task processes that start together make one ``gettoken`` call between them.

Starts the DingTalk emulator, then launches N fresh ``python -c`` task-like processes. Each builds a
``DingTalkBaseHook`` from ``AIRFLOW_CONN_DINGTALK_DEFAULT``, reports ready, and waits; when all are ready
they are released at once and call ``get_access_token()``. The emulator counts ``/gettoken`` calls.
Then the same with the connection extra ``shared_cache: false`` (each process for itself) for contrast.

Run: ``python benchmarks/token_sharing.py [--processes 50] [--check]``. Target: 1 gettoken call shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from _emulator import EmulatorProcess, task_env

TARGET_CALLS = 1

# A task process: build the hook (reads the connection), say "ready", wait for "go", fetch the token,
# print a digest of it (never the token) and the seconds the fetch took. os._exit skips Airflow's
# interpreter teardown, which is slow and not what is measured.
_TASK = """
import hashlib, json, os, sys, time
from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook

def task(ready, go, report):
    hook = DingTalkBaseHook()
    hook.app
    ready()
    go()
    started = time.perf_counter()
    token = hook.get_access_token()
    elapsed = time.perf_counter() - started
    report(json.dumps([hashlib.sha256(token.encode()).hexdigest()[:12], elapsed]))
    os._exit(0)
"""

# One fresh interpreter per task.
_POPEN = (
    _TASK
    + """
task(lambda: print("ready", flush=True), sys.stdin.readline, lambda line: print(line, flush=True))
"""
)

# One interpreter imports once and forks every task, as Airflow 3's supervisor forks task processes.
# Pipes are the barrier; lines shorter than PIPE_BUF are written atomically.
_FORK = (
    _TASK
    + """
n = int(sys.argv[1])
ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
out_r, out_w = os.pipe()
for _ in range(n):
    if os.fork() == 0:
        report = lambda line: os.write(out_w, line.encode() + b"\\n")
        task(lambda: os.write(ready_w, b"r"), lambda: os.read(go_r, 1), report)
got = 0
while got < n:
    got += len(os.read(ready_r, n - got))
print("ready", flush=True)
sys.stdin.readline()
os.write(go_w, b"g" * n)
lines = b""
while lines.count(b"\\n") < n:
    lines += os.read(out_r, 65536)
sys.stdout.write(lines.decode())
sys.stdout.flush()
for _ in range(n):
    os.wait()
"""
)


@dataclass
class Round:
    gettoken_calls: int
    distinct_tokens: int
    slowest: float  # seconds from release to token, slowest process


def launch(processes: int, mode: str, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", *args], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    if mode == "fork":
        return [start(_FORK, str(processes))]
    return [start(_POPEN) for _ in range(processes)]


def run_round(
    emulator: EmulatorProcess, processes: int, *, share: bool, mode: str, env: dict[str, str]
) -> Round:
    before = emulator.calls()["/gettoken"]
    extra = {} if share else {"shared_cache": False}
    with tempfile.TemporaryDirectory(prefix="dingtalk-state-") as state:
        os.chmod(state, 0o700)
        procs = launch(processes, mode, {**env, **task_env(emulator.connection_json(**extra), state)})
        for proc in procs:  # barrier: every task has imported and read its connection
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a task process failed to start (exit {proc.wait()})")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"a task process failed (exit {proc.returncode})")
            results += [json.loads(line) for line in out.splitlines() if line.startswith("[")]
    if len(results) != processes:
        raise RuntimeError(f"{processes - len(results)} task processes did not report a token")
    return Round(
        emulator.calls()["/gettoken"] - before,
        len({digest for digest, _ in results}),
        max(seconds for _, seconds in results),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=50, help="task processes per round (default 50)")
    parser.add_argument(
        "--launch",
        choices=("fork", "popen"),
        default="fork",
        help="fork tasks from one interpreter as Airflow 3 does (default), or start N interpreters (slow)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dingtalk-token-bench-") as home:
        # Compiled bytecode as in an installed environment (this machine sets PYTHONDONTWRITEBYTECODE).
        env = {"PYTHONPYCACHEPREFIX": os.path.join(home, "pycache"), "AIRFLOW_HOME": home}
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run(
            [sys.executable, "-c", "import airflow_provider_dingtalk.hooks.base, requests"],
            env={**os.environ, **env},
            check=True,
        )  # warm-up: compile once, not 50 times
        with EmulatorProcess() as emulator:
            print(
                f"emulator: {emulator.url}; {args.processes} task processes ({args.launch}) released together"
            )
            shared = run_round(emulator, args.processes, share=True, mode=args.launch, env=env)
            alone = run_round(emulator, args.processes, share=False, mode=args.launch, env=env)

    print(f"\n{'token cache':22} {'gettoken calls':>14} {'distinct tokens':>16} {'slowest fetch s':>15}")
    for name, result in (("shared (default)", shared), ("shared_cache: false", alone)):
        print(f"{name:22} {result.gettoken_calls:14d} {result.distinct_tokens:16d} {result.slowest:15.3f}")

    ok = shared.gettoken_calls == TARGET_CALLS and shared.distinct_tokens == 1
    verdict = "PASS" if ok else "FAIL"
    print(
        f"\n{verdict}: {args.processes} processes started together made {shared.gettoken_calls} gettoken "
        f"call(s) with the shared cache (target {TARGET_CALLS}); {alone.gettoken_calls} without it"
    )
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
