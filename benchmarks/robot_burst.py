"""Robot burst: 100 messages to one custom robot, which DingTalk lets send 20 a minute.

Two runs against the emulator's signed robot (its own process, real HTTP, DingTalk's 20-a-minute
window and 10-minute block on the 21st, errcode 130101):

1. **Alerts**: 100 tasks fail at once, each calling ``DingTalkCustomRobotNotifier`` from its own thread.
   The storm handling sends what the robot's window allows and folds the rest into summaries.
   Counted: messages delivered, and tasks accounted for (named in a message, or counted in a
   summary's "…and N more"); every one of the 100 must be, none twice.
2. **Plain sends**: 100 ``DingTalkCustomRobotHook.send`` calls one after another. The pacer makes each
   wait for a free slot, so all 100 are delivered, taking 4 to 5 minutes of emulator time (5
   windows of 20; the 5th opens after 4 minutes and a little margin).

Time is fake on both sides, as the provider's tests do it: the hook's clock is real time plus an
offset, and its ``sleep`` adds to the offset and moves the emulator's clock by the same amount through
``POST /_emulator/clock/advance``, so minutes of waiting take milliseconds. DingTalk itself is not
mocked. Rejections are read from the emulator's request log: no answer may be 130101.

Run: ``python benchmarks/robot_burst.py [--messages 100] [--check]``.
Target: every alert accounted for and all plain sends delivered, 0 rejected, plain sends in 4–5.5
emulator minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

from _emulator import EmulatorProcess, task_env

RATE_LIMITED = 130101
MINUTES_RANGE = (4.0, 5.5)
LOG_URL = "http://airflow.example.com/dags/etl/runs/manual__r1/tasks/{task}?try_number=1"


class EmulatorTime:
    """Real time plus an offset; sleeping adds to the offset here and in the emulator alike."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        self.emulator = emulator
        self.offset = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds
            self.emulator.advance(seconds)


def failure_context(task_id: str, run: str) -> dict[str, Any]:
    """What a task's ``on_failure_callback`` receives (the parts the alert reads)."""
    start = dt.datetime(2025, 1, 1, 3, 0, tzinfo=dt.UTC)
    ti = SimpleNamespace(
        dag_id="etl",
        task_id=task_id,
        run_id=f"manual__{run}",
        map_index=-1,
        try_number=1,
        max_tries=0,
        state="failed",
        start_date=start,
        end_date=start + dt.timedelta(seconds=42.5),
        hostname="worker-7",
        log_url=LOG_URL.format(task=task_id),
    )
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id, "exception": f"ValueError: row {task_id}"}


def accounted(messages: list[dict[str, Any]], run: str) -> tuple[list[str], int]:
    """Task ids named in delivered alerts of ``run``, and how many more summaries count without naming."""
    named: list[str] = []
    unnamed = 0
    for message in messages:
        payload = message.get(message.get("msgtype", ""), {})
        text = str(payload.get("text", "")) + str(payload.get("title", ""))
        if f"a{run}x" not in text:
            continue
        if "folded into one" in text:
            named += re.findall(rf"\[(a{run}x\d+)\]\(", text)
            unnamed += sum(int(n) for n in re.findall(r"…and (\d+) more", text))
        else:
            named += sorted(set(re.findall(rf"\b(a{run}x\d+)\b", text)))
    return named, unnamed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100, help="alerts, and plain sends (default 100)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    n = max(21, args.messages)

    with tempfile.TemporaryDirectory(prefix="dingtalk-robot-burst-") as home, EmulatorProcess() as emulator:
        state = os.path.join(home, "state")
        os.mkdir(state, 0o700)
        os.environ.update(task_env(emulator.connection_json(), state), AIRFLOW_HOME=home)
        os.environ["AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT"] = emulator.env[
            "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT"
        ]

        from airflow.sdk.log import configure_logging

        from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
        from airflow_provider_dingtalk.messages import Text
        from airflow_provider_dingtalk.notifications import DingTalkCustomRobotNotifier
        from airflow_provider_dingtalk.retry import RetryPolicy

        # As in a task process: JSON log lines to the task log, not the terminal.
        log_io = open(os.path.join(home, "task.log"), "wb", buffering=0)  # noqa: SIM115 (closed below)
        configure_logging(json_output=True, output=log_io, sending_to_supervisor=True)

        fake = EmulatorTime(emulator)
        run = uuid.uuid4().hex[:6]
        policy = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=10, sleep=fake.sleep)

        # 1. Alerts: all at once, each from its own thread, as many failing tasks would.
        notifier = DingTalkCustomRobotNotifier(
            retry_policy=policy, timeout=300, clock=fake.clock, sleep=fake.sleep
        )
        alert_start, real_start = fake.clock(), time.perf_counter()
        threads = [
            threading.Thread(target=notifier, args=(failure_context(f"a{run}x{i}", run),)) for i in range(n)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        alert_real = time.perf_counter() - real_start
        alert_minutes = (fake.clock() - alert_start) / 60

        fake.sleep(700)  # past DingTalk's 10-minute block, had there been one, and every window

        # 2. Plain sends, one after another through one hook.
        hook = DingTalkCustomRobotHook(retry_policy=policy, clock=fake.clock, sleep=fake.sleep)
        plain_start, real_start = fake.clock(), time.perf_counter()
        for i in range(n):
            hook.send(Text(content=f"plain-{run} deploy {i} finished"))
        plain_real = time.perf_counter() - real_start
        plain_minutes = (fake.clock() - plain_start) / 60

        delivered = emulator.inbox("custom_robot")
        sends = emulator.requests("/robot/send")
        log_io.close()

    alerts = [d for d in delivered if f"a{run}x" in str(d["message"])]
    plain = [d for d in delivered if f"plain-{run}" in str(d["message"])]
    named, unnamed = accounted([d["message"] for d in alerts], run)
    once = len(named) == len(set(named))
    codes = [(r["response"] or {}).get("errcode") for r in sends]
    rejected = codes.count(RATE_LIMITED)
    other_errors = sum(1 for c in codes if c not in (0, RATE_LIMITED))
    times = sorted(d["time"] for d in delivered)
    busiest = max(sum(1 for t in times if start <= t < start + 60) for start in times)
    folded = sum(1 for d in alerts if "folded into one" in str(d["message"]))

    print(f"python: {sys.executable}; emulator in its own process; one signed custom robot, fake clock")
    print(f"\n{'run':34} {'sent':>6} {'delivered':>10} {'accounted':>10} {'emu min':>8} {'real s':>7}")
    print(
        f"{'alerts (DingTalkCustomRobotNotifier)':34} {n:6} {len(alerts):10} {len(named) + unnamed:10}"
        f" {alert_minutes:8.2f} {alert_real:7.1f}"
    )
    print(
        f"{'plain sends (DingTalkCustomRobotHook)':34} {n:6} {len(plain):10} {len(plain):10}"
        f" {plain_minutes:8.2f} {plain_real:7.1f}"
    )
    print(
        f"\nalerts: {len(named)} named, {unnamed} counted in summaries, {folded} summary message(s), "
        f"each task at most once: {once}"
    )
    print(
        f"robot/send answers: {codes.count(0)} ok, {rejected} rejected with {RATE_LIMITED}, "
        f"{other_errors} other errors; busiest emulator minute: {busiest} messages (DingTalk allows 20)"
    )

    ok = (
        len(named) + unnamed == n
        and once
        and len(plain) == n
        and rejected == 0
        and other_errors == 0
        and busiest <= 20
        and MINUTES_RANGE[0] <= plain_minutes <= MINUTES_RANGE[1]
    )
    verdict = "PASS" if ok else "FAIL"
    print(
        f"\n{verdict}: alerts accounted {len(named) + unnamed}/{n} in {len(alerts)} messages; plain sends "
        f"delivered {len(plain)}/{n}; rejected {rejected}; plain sends took {plain_minutes:.2f} emulator "
        f"minutes (target {MINUTES_RANGE[0]:g}–{MINUTES_RANGE[1]:g})"
    )
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
