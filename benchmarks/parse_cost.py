"""DAG-parse cost: what importing our operators and notifiers adds to ``import airflow.sdk``.

A DAG file imports our operator and notifier modules every time the DAG processor parses it, so they
must cost next to nothing and leave requests, pycryptodome, FastAPI and uvicorn for task run time.

Each sample is a fresh interpreter that times its own imports with ``perf_counter`` (interpreter
start-up is excluded, as it is the same for both). Samples alternate A, B, A, B … so machine noise
hits both sides alike; the figure of merit is the ratio of the medians. Bytecode is compiled into a
private ``PYTHONPYCACHEPREFIX`` and warmed up first, as in an installed environment (this machine sets
``PYTHONDONTWRITEBYTECODE``, which would otherwise make every run recompile our source).

Run: ``python benchmarks/parse_cost.py [--runs 9] [--check]``. Target: ratio ≤ 1.05 and no heavy module.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pkgutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any

TARGET_RATIO = 1.05
HEAVY = ("requests", "Crypto", "fastapi", "uvicorn")
PACKAGES = ("airflow_provider_dingtalk.operators", "airflow_provider_dingtalk.notifications")
SLACK_MODULE = "airflow.providers.slack.operators.slack"

# Runs in the child: time the imports, report the time and what got loaded.
_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
before = set(sys.modules)
for name in {modules!r}:
    __import__(name)
t2 = time.perf_counter()
added = sorted({{m.split(".")[0] for m in set(sys.modules) - before}})
print(json.dumps({{"sdk": t1 - t0, "total": t2 - t0, "extra": t2 - t1, "added_top_level": added,
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def discover(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages and every module under them, so new operators and notifiers are covered unasked."""
    found: list[str] = []
    for package in packages:
        found.append(package)
        spec = importlib.util.find_spec(package)
        locations = spec.submodule_search_locations if spec else None
        for info in pkgutil.walk_packages(list(locations or []), prefix=f"{package}."):
            found.append(info.name)
    return found


def probe(modules: list[str], env: dict[str, str]) -> dict[str, Any]:
    code = _PROBE.format(modules=modules, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, timeout=120
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def child_env(cache_prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache_prefix
    env.setdefault("AIRFLOW_HOME", os.path.join(cache_prefix, "airflow-home"))
    return env


Samples = dict[str, list[dict[str, Any]]]


def measure(variants: dict[str, list[str]], runs: int, env: dict[str, str]) -> Samples:
    """Alternate the variants ``runs`` times, after one warm-up each; one probe result per run."""
    for modules in variants.values():
        probe(modules, env)  # warm-up: compiles bytecode into the prefix, fills the OS file cache
    samples: Samples = {name: [] for name in variants}
    for _ in range(runs):
        for name, modules in variants.items():
            samples[name].append(probe(modules, env))
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="samples per variant (default 9, minimum 7)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    runs = max(7, args.runs)

    ours = discover()
    slack_installed = importlib.util.find_spec("airflow.providers.slack") is not None
    variants = {"import airflow.sdk": [], "+ dingtalk operators/notifiers": ours}
    if slack_installed:
        variants["+ slack operator (reference)"] = [SLACK_MODULE]

    print(f"python: {sys.executable}")
    print(f"our modules ({len(ours)}): {', '.join(ours)}")
    with tempfile.TemporaryDirectory(prefix="dingtalk-parse-cost-") as prefix:
        samples = measure(variants, runs, child_env(prefix))

    totals = {name: [s["total"] for s in results] for name, results in samples.items()}
    base = statistics.median(totals["import airflow.sdk"])
    print(f"\n{runs} alternating fresh-interpreter runs each; import time (perf_counter, no start-up)")
    print(f"{'variant':34} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'ratio':>7}")
    for name, values in totals.items():
        median = statistics.median(values)
        print(
            f"{name:34} {median * 1e3:10.1f} {min(values) * 1e3:8.1f} {max(values) * 1e3:8.1f}"
            f" {median / base:7.3f}"
        )
    if not slack_installed:
        print(f"{'+ slack operator (reference)':34} not installed (pip install '.[benchmarks]' adds the row)")

    mine = samples["+ dingtalk operators/notifiers"]
    ratio = statistics.median(totals["+ dingtalk operators/notifiers"]) / base
    extra = statistics.median(s["extra"] for s in mine)
    heavy = sorted({m for s in mine for m in s["heavy"]})
    added = sorted({m for s in mine for m in s["added_top_level"]} - {"airflow_provider_dingtalk"})
    # The same increment measured inside each process, free of run-to-run noise in airflow.sdk itself.
    print(f"\nour imports after airflow.sdk, in-process: median {extra * 1e3:.1f} ms ({extra / base:.2%})")
    print(f"top-level packages our imports add besides our own: {added or 'none'}")
    print(f"heavy modules loaded by our imports ({', '.join(HEAVY)}): {heavy or 'none'}")

    ok = ratio <= TARGET_RATIO and not heavy
    verdict = "PASS" if ok else "FAIL"
    print(f"\n{verdict}: parse-cost ratio {ratio:.3f} (target ≤ {TARGET_RATIO}); heavy: {heavy or 'none'}")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
