"""1,000 approval tasks deferred at once in one triggerer: DingTalk requests, memory, decision → finish.

Real ``DingTalkApprovalTrigger`` s in one event loop (as in a triggerer), sharing the app's poller,
against the emulator in its own process over HTTP, with the emulator's throttle at 20 calls per
second per app and API. Approvers decide at random moments over ``--decide-over`` seconds; each
trigger's finish is timed from its approver's decision. Run twice: polling only, and with a wake-up
per decision (what a Stream ``bpms_instance_change`` event does).

    .venv/bin/python benchmarks/approvals.py [--instances 1000] [--decide-over 150]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import time
import urllib.request

from _emulator import EmulatorProcess

PROCESS_CODE = "PROC-EMULATOR-DATA-EXPORT"
FORM = {"Dataset": "orders", "Rows": 1, "Destination": "S3"}


def _post(url: str, body: dict[str, object]) -> None:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(emulator: EmulatorProcess, n: int, decide_over: float, wake: bool) -> dict[str, float]:
    from airflow_provider_dingtalk.approvals import form_component_values
    from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook
    from airflow_provider_dingtalk.triggers.approval import DingTalkApprovalTrigger
    from airflow_provider_dingtalk.triggers.approval_poller import _POLLERS, wake_approval

    _post(emulator.url + "/_emulator/workflow-settings", {"qps_limit": 10_000})  # set-up only
    hook = DingTalkApprovalHook()
    values = form_component_values(FORM)
    ids = [
        hook.start_instance(
            process_code=PROCESS_CODE, originator_user_id="user1", dept_id=-1, form_component_values=values
        )
        for _ in range(n)
    ]
    _post(emulator.url + "/_emulator/workflow-settings", {"qps_limit": 20})
    created = time.time()
    rss_before = _rss_mb()
    finished: dict[str, float] = {}

    async def wait(instance_id: str) -> None:
        async for _event in DingTalkApprovalTrigger(instance_id=instance_id, created_at=created).run():
            finished[instance_id] = time.monotonic()

    waits = [asyncio.create_task(wait(i)) for i in ids]
    start = time.monotonic()
    decided: dict[str, float] = {}
    schedule = sorted((random.uniform(0, decide_over), i) for i in ids)
    for at, instance_id in schedule:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        await asyncio.to_thread(
            _post,
            emulator.url + "/_emulator/workflow/approve",
            {"instance_id": instance_id, "user_id": "user2"},
        )
        decided[instance_id] = time.monotonic()
        if wake:
            wake_approval(instance_id)
    await asyncio.gather(*waits)
    elapsed = time.monotonic() - start
    (poller,) = _POLLERS[asyncio.get_running_loop()].values()
    latencies = sorted(finished[i] - decided[i] for i in ids)
    return {
        "instances": n,
        "seconds": round(elapsed, 1),
        "gets": poller.requests,
        "gets_per_minute": round(poller.requests / elapsed * 60),
        "throttled_403": poller.throttled,
        "rss_growth_mb": round(_rss_mb() - rss_before, 1),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p95_s": round(latencies[int(len(latencies) * 0.95) - 1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--decide-over", type=float, default=150.0)
    parser.add_argument("--check", action="store_true", help="exit 1 on FAIL")
    args = parser.parse_args()
    random.seed(7)
    budget = 10 * 60  # the poller's default: 10 GETs per second per app
    ok = True
    with EmulatorProcess() as emulator:
        os.environ["AIRFLOW_CONN_DINGTALK_DEFAULT"] = emulator.connection_json()
        for wake in (False, True):
            figures = asyncio.run(run(emulator, args.instances, args.decide_over, wake))
            print(json.dumps({"mode": "stream wake-ups" if wake else "polling only", **figures}), flush=True)
            ok = ok and figures["gets_per_minute"] <= budget * 1.05 and figures["throttled_403"] == 0
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}: GETs per minute within the budget of {budget} (1.05 slack), no 403 throttling")
    if args.check and not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
