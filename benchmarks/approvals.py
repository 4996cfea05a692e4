"""1,000 approval tasks deferred at once in one triggerer: DingTalk requests, memory, decision → finish.

Real ``DingTalkApprovalTrigger`` s in one event loop (as in a triggerer), sharing the app's poller,
against the emulator in its own process over HTTP, with the emulator's throttle at 20 calls per
second per app and API. Approvers decide at random moments over ``--decide-over`` seconds; each
trigger's finish is timed from its approver's decision. Three runs:

* ``polling only``: ``use_stream=False``;
* ``wake_approval() per decision``: polling only, plus a direct ``wake_approval(id)`` right after each
  decision (the best a wake-up can do);
* ``stream events``: ``use_stream=True``: the triggers' poller listens to the emulator's Stream
  gateway over a real WebSocket, and each decision's ``bpms_instance_change`` comes down it. A
  first approval (not counted) is waited on before the others are started, as in a triggerer that
  already runs, so their start events arrive and polling drops to the 300 s safety net.

    .venv/bin/python benchmarks/approvals.py [--instances 1000] [--decide-over 150] [--modes stream]
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


MODES = {"polling": "polling only", "wake": "wake_approval() per decision", "stream": "stream events"}


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        answer: dict[str, object] = json.loads(resp.read())
    return answer


async def run(emulator: EmulatorProcess, n: int, decide_over: float, mode: str) -> dict[str, float]:
    from airflow_provider_dingtalk.approvals import form_component_values
    from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook
    from airflow_provider_dingtalk.triggers.approval import DingTalkApprovalTrigger
    from airflow_provider_dingtalk.triggers.approval_poller import _POLLERS, wake_approval

    _post(emulator.url + "/_emulator/workflow-settings", {"qps_limit": 10_000})  # set-up only
    hook = DingTalkApprovalHook()
    values = form_component_values(FORM)
    use_stream = mode == "stream"
    finished: dict[str, float] = {}

    def start() -> str:
        return hook.start_instance(
            process_code=PROCESS_CODE, originator_user_id="user1", dept_id=-1, form_component_values=values
        )

    async def wait(instance_id: str, created: float) -> None:
        trigger = DingTalkApprovalTrigger(instance_id=instance_id, created_at=created, use_stream=use_stream)
        async for _event in trigger.run():
            finished[instance_id] = time.monotonic()

    first = ""
    if use_stream:  # a triggerer that already waits on an approval: its Stream connection is open
        first = start()
        first_wait = asyncio.create_task(wait(first, time.time()))
        while not _get(emulator.url + "/_emulator/stream")["connections"]:
            await asyncio.sleep(0.05)
    ids = [start() for _ in range(n)]
    _post(emulator.url + "/_emulator/workflow-settings", {"qps_limit": 20})
    created = time.time()
    rss_before = _rss_mb()
    waits = [asyncio.create_task(wait(i, created)) for i in ids]
    begin = time.monotonic()
    decided: dict[str, float] = {}
    schedule = sorted((random.uniform(0, decide_over), i) for i in ids)
    for at, instance_id in schedule:
        await asyncio.sleep(max(0.0, begin + at - time.monotonic()))
        await asyncio.to_thread(
            _post,
            emulator.url + "/_emulator/workflow/approve",
            {"instance_id": instance_id, "user_id": "user2"},
        )
        decided[instance_id] = time.monotonic()
        if mode == "wake":
            wake_approval(instance_id)
    await asyncio.gather(*waits)
    elapsed = time.monotonic() - begin
    (poller,) = _POLLERS[asyncio.get_running_loop()].values()
    gets, stream_events = poller.requests, poller.stream_events
    if first:
        await asyncio.to_thread(
            _post, emulator.url + "/_emulator/workflow/approve", {"instance_id": first, "user_id": "user2"}
        )
        await first_wait
    latencies = sorted(finished[i] - decided[i] for i in ids)
    figures: dict[str, float] = {
        "instances": n,
        "seconds": round(elapsed, 1),
        "gets": gets,
        "gets_per_minute": round(gets / elapsed * 60),
        "throttled_403": poller.throttled,
        "rss_growth_mb": round(_rss_mb() - rss_before, 1),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p95_s": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "latency_max_s": round(latencies[-1], 2),
    }
    if use_stream:
        gateway = _get(emulator.url + "/_emulator/stream")
        figures["stream_events"] = stream_events  # bpms_instance_change events the poller looked at
        figures["unacked"] = int(str(gateway["waiting"]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--decide-over", type=float, default=150.0)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--check", action="store_true", help="exit 1 on FAIL")
    args = parser.parse_args()
    budget = 10 * 60  # the poller's default: 10 GETs per second per app
    ok = True
    for mode in args.modes:
        random.seed(7)  # the same decision times in every mode
        with EmulatorProcess() as emulator:  # a fresh one: no instances, GET counts, events of the last
            os.environ["AIRFLOW_CONN_DINGTALK_DEFAULT"] = emulator.connection_json()
            figures = asyncio.run(run(emulator, args.instances, args.decide_over, mode))
        print(json.dumps({"mode": MODES[mode], **figures}), flush=True)
        ok = ok and figures["gets_per_minute"] <= budget * 1.05 and figures["throttled_403"] == 0
        ok = ok and figures.get("unacked", 0) == 0
    verdict = "PASS" if ok else "FAIL"
    print(
        f"{verdict}: GETs per minute within the budget of {budget} (1.05 slack), no 403 throttling, "
        "every Stream event acked"
    )
    if args.check and not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
