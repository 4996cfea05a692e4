"""Cluster: one DingTalk for many Celery workers, with the file backend (today) and Redis side by side.

Starts everything itself on loopback (tests/cluster/celery.py, the CI test's cluster made bigger):
Postgres and Redis from Debian's packages (``scripts/install_services``), Airflow's scheduler,
DAG processor, 4 API servers and ``--workers`` Celery workers, each worker and API server with its own
state folder, as separate machines would have. Every process has ``[dingtalk] state_backend =
redis`` but 2 of the API servers, whose receivers keep their state in files; the ``files`` side of
the storm and tokens uses connections whose extras choose the file backend, which is what users get
without Redis. The DingTalk emulator runs in this process (it is the only thing this
process does while Airflow's processes work).

1. **Storm**: ``--tasks`` mapped tasks fail at once, each with the custom-robot notifier, on one
   robot per side (both DAGs at once, so both see the same load). Counted at the emulator: messages
   delivered, 130101 answers, the most messages in any 60 s, failures named or counted in a summary,
   named twice, missing.
2. **Tokens**: ``--token-tasks`` mapped tasks each take the app's access token (files, then Redis):
   ``gettoken`` calls at the emulator.
3. **Receiver**: ``--events`` approval events per side, each delivered as DingTalk retries it, to
   API server 1, then 2, then 1 again (sealed anew each time): asset events written.

Run: ``python benchmarks/cluster.py [--workers 3] [--tasks 100] [--token-tasks 300] [--events 20]
[--check]``. Targets (Redis): 0 x 130101, <= 20 a minute, every failure accounted once; 1 gettoken;
one asset event per event. ~6 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the cluster of tests/cluster, started the same way here

from tests.cluster.celery import ROBOTS, CeleryCluster, alerts_accounted, sends_per_minute  # noqa: E402

RATE_LIMITED = 130101
SIDES = ("files", "redis")
RUN_TIMEOUT = 900.0
QUIET = 30.0  # seconds without a new robot message: every notifier is done (Airflow kills them at 20 s)
APPROVALS = "dingtalk://events/bpms_instance_change"


@dataclass
class Storm:
    delivered: int
    rejected: int  # 130101 answers
    busiest_minute: int
    accounted: int
    twice: int
    missing: int
    seconds: float


def storm(cluster: CeleryCluster, tasks: int) -> dict[str, Storm]:
    emulator, airflow = cluster.emulator, cluster.airflow
    started = time.monotonic()
    runs = {side: airflow.trigger_run(f"cluster_storm_{side}", {"tasks": tasks}) for side in SIDES}
    for side, run in runs.items():
        airflow.wait_for_run(f"cluster_storm_{side}", run, timeout=RUN_TIMEOUT)
    last, count = time.monotonic(), -1
    while time.monotonic() - last < QUIET:  # the last notifiers may still be sending
        now = len(emulator.inbox("custom_robot"))
        if now != count:
            last, count = time.monotonic(), now
        time.sleep(1)
    result = {}
    for side in SIDES:
        deliveries = [d for d in emulator.inbox("custom_robot") if d.target == ROBOTS[side]]
        named, unnamed = alerts_accounted([d.message for d in deliveries], f"cluster_storm_{side}")
        # The request log masks the robot's token; the message names its DAG.
        answers = [
            r.response
            for r in emulator.requests("/robot/send")
            if f"cluster_storm_{side}" in str(r.body) and isinstance(r.response, dict)
        ]
        times = [d.time for d in deliveries]
        result[side] = Storm(
            delivered=len(deliveries),
            rejected=sum(1 for a in answers if a.get("errcode") == RATE_LIMITED),
            busiest_minute=sends_per_minute(times),
            accounted=len(set(named)) + unnamed,
            twice=len(named) - len(set(named)),
            missing=len(set(range(tasks)) - set(named)) - unnamed,
            seconds=max(times, default=0) - min(times, default=0),
        )
    print(f"  storm: {time.monotonic() - started:.0f} s")
    return result


def tokens(cluster: CeleryCluster, tasks: int) -> dict[str, int]:
    calls = {}
    for side in SIDES:
        before = cluster.emulator.calls("/gettoken")
        run = cluster.airflow.trigger_run(f"cluster_tokens_{side}", {"tasks": tasks})
        cluster.airflow.wait_for_run(f"cluster_tokens_{side}", run, timeout=RUN_TIMEOUT)
        calls[side] = cluster.emulator.calls("/gettoken") - before
    return calls


def receiver(cluster: CeleryCluster, events: int) -> dict[str, tuple[int, int]]:
    """Per side: (deliveries acknowledged, asset events written) for ``events`` events delivered 3 times
    each, alternating between that side's two API servers."""
    from airflow_provider_dingtalk.crypto import new_nonce
    from airflow_provider_dingtalk.testing.emulator.endpoints.callback import Registration, deliver

    emulator = cluster.emulator
    settings = emulator.receiver.connection()
    result = {}
    for side, ports in (("files", cluster.file_api_ports), ("redis", cluster.api_ports)):
        first, second = (
            Registration(
                tags=["bpms_instance_change"],
                token=settings["extra"]["token"],
                aes_key=settings["password"],
                url=f"http://127.0.0.1:{port}/dingtalk/events",
            )
            for port in ports
        )
        before = asset_events(cluster)
        acked = 0
        for i in range(events):
            event = {
                "EventType": "bpms_instance_change",
                "processInstanceId": f"cluster-{side}-{i}-{new_nonce(6)}",
                "type": "finish",
                "result": "agree",
            }
            for reg in (first, second, first):  # DingTalk's retries, alternating between the servers
                acked += deliver(emulator.state, emulator.app, reg, event) == "ok"
        result[side] = (acked, asset_events(cluster) - before)
    return result


def asset_events(cluster: CeleryCluster) -> int:
    found = cluster.airflow.get("/api/v2/assets/events", limit=1)
    return int(found["total_entries"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3, help="Celery workers (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="task slots per worker (default 8)")
    parser.add_argument("--tasks", type=int, default=100, help="failing mapped tasks per side (default 100)")
    parser.add_argument("--token-tasks", type=int, default=300, help="token tasks per side (default 300)")
    parser.add_argument("--events", type=int, default=20, help="receiver events (default 20)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

    started = time.monotonic()
    with DingTalkEmulator() as emulator:
        cluster = CeleryCluster(
            emulator, workers=args.workers, concurrency=args.concurrency, api_servers=2, file_api_servers=2
        )
        try:
            cluster.start()
            print(f"cluster up in {cluster.startup_seconds:.0f} s: {args.workers} workers, 2 + 2 API servers")
            storms = storm(cluster, args.tasks)
            calls = tokens(cluster, args.token_tasks)
            received = receiver(cluster, args.events)
            per_worker = cluster.tasks_per_worker()
        except BaseException:
            print(cluster.airflow.logs(tail=4000))
            print(f"Airflow home (logs) kept in {cluster.home}")
            cluster.close(keep_logs=True)
            raise
        cluster.close()

    f, r = storms["files"], storms["redis"]
    rows: list[tuple[str, Any, Any]] = [
        (f"storm: {args.tasks} failures, messages delivered", f.delivered, r.delivered),
        ("storm: 130101 answers (robot blocked)", f.rejected, r.rejected),
        ("storm: most messages in any 60 s", f.busiest_minute, r.busiest_minute),
        ("storm: failures named or counted", f.accounted, r.accounted),
        ("storm: named twice / missing", f"{f.twice} / {f.missing}", f"{r.twice} / {r.missing}"),
        ("storm: first to last message, s", f"{f.seconds:.0f}", f"{r.seconds:.0f}"),
        (f"tokens: {args.token_tasks} tasks, gettoken calls", calls["files"], calls["redis"]),
        (f"receiver: {args.events} events x 3, acknowledged", received["files"][0], received["redis"][0]),
        ("receiver: asset events written", received["files"][1], received["redis"][1]),
    ]
    print(f"\n{'':52} {'files':>10} {'redis':>10}")
    for label, files, redis in rows:
        print(f"{label:52} {files!s:>10} {redis!s:>10}")
    print(f"tasks per worker: {per_worker}; total {time.monotonic() - started:.0f} s")

    ok = (
        r.rejected == 0
        and r.busiest_minute <= 20
        and r.accounted == args.tasks
        and r.twice == 0
        and calls["redis"] == 1
        and calls["files"] >= min(args.workers, 2)
        and received["redis"][1] == args.events
        and all(per_worker.values())
    )
    print(("PASS" if ok else "FAIL") + ": Redis: 0 x 130101, <= 20 a minute, every failure once; 1 gettoken; "
          "one asset event per event")  # fmt: skip
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
