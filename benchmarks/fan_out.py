"""Fan-out: one work notification to 20,000 users is 4 calls of 5,000; wall time vs those 4 raw calls.

``DingTalkWorkNotificationHook.send_work_notification`` checks and de-duplicates the recipients, splits
them into calls of at most 5,000 user ids (DingTalk's cap) and sends them a minute apart (DingTalk's
5,000 recipients a minute per app; both sides wait on a fake clock that moves the emulator's, so a wait
costs one control call). The raw side posts the same 4 JSON bodies (same users in the same order, same
content, same token) with a keep-alive ``requests.Session``. Rounds alternate hook, raw, hook, raw …,
each round with its own content (DingTalk drops the same content to the same user twice a day). The
emulator runs in its own process; its request log, read once after timing, shows which calls each side
made: the hook's must be exactly 4 per send, covering every user once, and no gettoken.

Run: ``python benchmarks/fan_out.py [--users 20000] [--rounds 15] [--check]``.
Target: 4 calls per send (``ceil(users / 5000)``), and median wall-time ratio hook / raw ≤ 1.10.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

from _emulator import EmulatorProcess, task_env

TARGET_RATIO = 1.10
PATH = "/topapi/message/corpconversation/asyncsend_v2"
PER_CALL = 5000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000, help="recipients per send (default 20000)")
    parser.add_argument("--rounds", type=int, default=15, help="sends per side (default 15, minimum 3)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    users_n, rounds = max(1, args.users), max(3, args.rounds)
    expected_calls = math.ceil(users_n / PER_CALL)

    with tempfile.TemporaryDirectory(prefix="dingtalk-fan-out-") as home, EmulatorProcess() as emulator:
        state = os.path.join(home, "state")
        os.mkdir(state, 0o700)
        os.environ.update(task_env(emulator.connection_json(), state), AIRFLOW_HOME=home)

        import requests
        from airflow.sdk.log import configure_logging

        from airflow_provider_dingtalk._json import dumps
        from airflow_provider_dingtalk.hooks.work_notification import DingTalkWorkNotificationHook
        from airflow_provider_dingtalk.messages import Text

        # As in a task process: JSON log lines to the task log, not the terminal.
        log_io = open(os.path.join(home, "task.log"), "wb", buffering=0)  # noqa: SIM115 (closed below)
        configure_logging(json_output=True, output=log_io, sending_to_supervisor=True)

        from airflow_provider_dingtalk.testing.emulator import EmulatorTime

        # The hook sends the calls a minute apart (DingTalk's 5,000 recipients a minute per app): its
        # waits move the emulator's clock instead, so the figure is the hook's own cost.
        fake = EmulatorTime(emulator)
        hook = DingTalkWorkNotificationHook(clock=fake.clock, sleep=fake.sleep)
        token = hook.get_access_token()
        agent_id = int(hook.app.agent_id or 0)
        users = [f"user{i}" for i in range(1, users_n + 1)]
        url = emulator.url + PATH
        headers = {"Content-Type": "application/json;charset=utf-8"}
        raw_session = requests.Session()
        run = uuid.uuid4().hex[:8]

        def via_hook(n: int) -> object:
            text = f"Fan-out {run}-hook-{n}: the quarterly report is ready."
            return hook.send_work_notification(Text(content=text), userid_list=users)

        def raw(n: int) -> object:
            text = f"Fan-out {run}-raw-{n}: the quarterly report is ready."
            task_ids = []
            for start in range(0, users_n, PER_CALL):
                if start:
                    fake.sleep(60)  # what a correct client waits too: 5,000 recipients a minute per app
                body = {
                    "agent_id": agent_id,
                    "msg": {"msgtype": "text", "text": {"content": text}},
                    "userid_list": ",".join(users[start : start + PER_CALL]),
                }
                resp = raw_session.post(
                    url, params={"access_token": token}, data=dumps(body).encode("utf-8"), headers=headers
                )
                answer = resp.json()
                assert answer["errcode"] == 0, answer
                task_ids.append(answer["task_id"])
            return task_ids

        via_hook(-1)  # warm-up: connections open, code paths hot
        raw(-1)
        logged_before = len(emulator.requests())
        times: dict[str, list[float]] = {"hook": [], "raw": []}
        for n in range(rounds):
            for name, send in (("hook", via_hook), ("raw", raw)):
                started = time.perf_counter()
                send(n)
                times[name].append(time.perf_counter() - started)
        timed_log = emulator.requests()[logged_before:]
        log_io.close()

    hook_calls = [r for r in timed_log if "-hook-" in _content(r)]
    stray = [r["path"] for r in timed_log if not ("-hook-" in _content(r) or "-raw-" in _content(r))]
    per_send = len(hook_calls) / rounds
    covered = _covers_once(hook_calls, users, rounds)
    errors = sum(1 for r in timed_log if (r["response"] or {}).get("errcode") != 0)

    print(f"python: {sys.executable}; emulator in its own process; {users_n} recipients, {rounds} rounds")
    print(f"\n{'side':44} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    labels = (
        ("hook", "DingTalkWorkNotificationHook.send_work_notification"),
        ("raw", f"{expected_calls} raw requests.Session calls"),
    )
    for name, label in labels:
        values = times[name]
        print(
            f"{label:44} {statistics.median(values) * 1e3:10.1f} {min(values) * 1e3:8.1f}"
            f" {max(values) * 1e3:8.1f}"
        )
    ratio = statistics.median(times["hook"]) / statistics.median(times["raw"])
    print(f"\nratio hook/raw: median {ratio:.3f}")
    print(
        f"hook calls per send: {per_send:g} (each user exactly once: {covered}); "
        f"other requests: {stray or 'none'}; error answers: {errors}"
    )

    ok = per_send == expected_calls and covered and not stray and errors == 0 and ratio <= TARGET_RATIO
    verdict = "PASS" if ok else "FAIL"
    print(
        f"\n{verdict}: {users_n} recipients → {per_send:g} calls (target {expected_calls}); "
        f"wall-time ratio {ratio:.3f} (target ≤ {TARGET_RATIO})"
    )
    return 1 if args.check and not ok else 0


def _content(record: dict[str, Any]) -> str:
    body = record["body"] if isinstance(record["body"], dict) else {}
    return str(body.get("msg", {}).get("text", {}).get("content", "")) if record["path"] == PATH else ""


def _covers_once(calls: list[dict[str, Any]], users: list[str], rounds: int) -> bool:
    """Every send's calls name each user exactly once, each call at most 5,000 of them."""
    sends: dict[str, list[str]] = {}
    for record in calls:
        chunk = str(record["body"]["userid_list"]).split(",")
        if len(chunk) > PER_CALL:
            return False
        sends.setdefault(_content(record), []).extend(chunk)
    return len(sends) == rounds and all(sorted(s) == sorted(users) for s in sends.values())


if __name__ == "__main__":
    raise SystemExit(main())
