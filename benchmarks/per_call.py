"""Per-call cost: ``DingTalkBaseHook.call_oapi`` vs a raw keep-alive ``requests.Session`` on the same wire.

Both post the same JSON to the same emulator endpoint (``POST /topapi/v2/user/get``) with the same
access token, in alternating blocks (hook, raw, hook, raw …) so machine noise hits both alike. The
hook's token is fetched once before timing starts. The emulator runs in its own process, so it does
not compete with the client for the GIL, and its request log proves the hook sent exactly one HTTP
request per call (no stray gettoken).

Run: ``python benchmarks/per_call.py [--calls 1000] [--block 50] [--profile] [--check]``.
Target: median per-call time ratio hook / raw ≤ 1.10, and one request per call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections import Counter

from _emulator import EmulatorProcess, task_env, timed_block

TARGET_RATIO = 1.10
PATH = "/topapi/v2/user/get"
BODY = {"userid": "user1", "language": "zh_CN"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per side (default 1000, minimum 1000)")
    parser.add_argument("--block", type=int, default=50, help="calls per block before switching side")
    parser.add_argument("--profile", action="store_true", help="cProfile the hook's calls afterwards")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    calls, block = max(1000, args.calls), max(1, args.block)

    with tempfile.TemporaryDirectory(prefix="dingtalk-per-call-") as home, EmulatorProcess() as emulator:
        state = os.path.join(home, "state")
        os.mkdir(state, 0o700)
        os.environ.update(task_env(emulator.connection_json(), state), AIRFLOW_HOME=home)

        import requests

        from airflow_provider_dingtalk._json import dumps
        from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook

        hook = DingTalkBaseHook()
        token = hook.get_access_token()
        url = emulator.url + PATH
        data = dumps(BODY).encode("utf-8")
        headers = {"Content-Type": "application/json;charset=utf-8"}
        raw_session = requests.Session()

        def via_hook() -> object:
            return hook.call_oapi("POST", PATH, json=BODY)

        def raw() -> object:
            resp = raw_session.post(url, params={"access_token": token}, data=data, headers=headers)
            body = resp.json()
            assert body["errcode"] == 0, body
            return body

        for call in (via_hook, raw):  # warm-up: connections open, code paths hot
            timed_block(call, 20, [])

        times: dict[str, list[float]] = {"hook": [], "raw": []}
        during_hook: Counter[str] = Counter()
        for _ in range(-(-calls // block)):
            before = emulator.calls()
            timed_block(via_hook, block, times["hook"])
            during_hook += emulator.calls() - before
            timed_block(raw, block, times["raw"])

        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(timed_block, via_hook, calls, [])
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    hook_n = len(times["hook"])
    print(
        f"python: {sys.executable}; emulator in its own process; {hook_n} calls per side, blocks of {block}"
    )
    print(f"\n{'side':28} {'median µs':>10} {'mean µs':>10} {'p90 µs':>10}")
    for name, label in (("hook", "DingTalkBaseHook.call_oapi"), ("raw", "raw requests.Session")):
        values = times[name]
        p90 = statistics.quantiles(values, n=10)[-1]
        print(
            f"{label:28} {statistics.median(values) * 1e6:10.0f} {statistics.mean(values) * 1e6:10.0f}"
            f" {p90 * 1e6:10.0f}"
        )
    ratio = statistics.median(times["hook"]) / statistics.median(times["raw"])
    mean_ratio = statistics.mean(times["hook"]) / statistics.mean(times["raw"])
    print(f"\nratio hook/raw: median {ratio:.3f}, mean {mean_ratio:.3f}")
    print(f"requests the emulator received during the hook's blocks: {dict(during_hook)}")

    one_each = during_hook == Counter({PATH: hook_n})
    ok = ratio <= TARGET_RATIO and one_each
    verdict = "PASS" if ok else "FAIL"
    print(
        f"\n{verdict}: per-call ratio {ratio:.3f} (target ≤ {TARGET_RATIO}); "
        f"{sum(during_hook.values())} HTTP requests for {hook_n} hook calls"
        f"{'' if one_each else ' (expected exactly one per call, none to /gettoken)'}"
    )
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
