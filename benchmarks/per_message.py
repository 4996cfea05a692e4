"""Per-message cost: ``DingTalkMessageOperator`` vs a raw keep-alive ``requests.Session`` on the same wire.

The operator is executed directly (``op.execute(context={})``) with its connection pointing at the
emulator, which runs in its own process. Each message is a text work notification with its own
content (DingTalk filters the same content to the same user twice a day, code 143106) to one of 100
users (DingTalk also filters past 500 messages per user a day). The raw side posts the same JSON,
encoded the same way, to the same endpoint (``asyncsend_v2``) with the same token. Sides alternate in
blocks so machine noise hits both alike. The emulator's request log proves the operator sent exactly
one HTTP request per message (no stray gettoken), and its inbox that every message was delivered.

Main row: one operator instance whose ``text`` changes before each ``execute`` (what template
rendering does), so the hook, its keep-alive session and its cached token are reused; this is what
the operator adds per message. Extra row (no target): a new operator per message, as each Airflow
task is, so each builds its hook, reads the connection, takes the token from the shared cache and
opens a new connection.

Run: ``python benchmarks/per_message.py [--messages 1000] [--block 50] [--fresh 200] [--profile] [--check]``.
Target: median per-message time ratio operator / raw ≤ 1.10, and one request per message.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import uuid
from collections import Counter
from typing import Any

from _emulator import EmulatorProcess, task_env, timed_block

TARGET_RATIO = 1.10
PATH = "/topapi/message/corpconversation/asyncsend_v2"
USERS = 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages per side (minimum 1000)")
    parser.add_argument("--block", type=int, default=50, help="messages per block before switching side")
    parser.add_argument("--fresh", type=int, default=200, help="messages for the new-operator row (0: skip)")
    parser.add_argument("--profile", action="store_true", help="cProfile the operator's sends afterwards")
    parser.add_argument("--profile-sort", default="tottime", help="pstats sort key for --profile")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    messages, block = max(1000, args.messages), max(1, args.block)

    with tempfile.TemporaryDirectory(prefix="dingtalk-per-message-") as home, EmulatorProcess() as emulator:
        state = os.path.join(home, "state")
        os.mkdir(state, 0o700)
        os.environ.update(task_env(emulator.connection_json(), state), AIRFLOW_HOME=home)
        import requests
        from airflow.sdk.bases.operator import ExecutorSafeguard
        from airflow.sdk.log import configure_logging

        from airflow_provider_dingtalk._json import dumps
        from airflow_provider_dingtalk.operators.work_notification import DingTalkMessageOperator

        # As in a task process: JSON log lines to the task log (the Task Runner sets this up), and no
        # "execute cannot be called outside of the Task Runner" warning (the Task Runner's sentinel).
        log_io = open(os.path.join(home, "task.log"), "wb", buffering=0)  # noqa: SIM115 (closed below)
        configure_logging(json_output=True, output=log_io, sending_to_supervisor=True)
        ExecutorSafeguard.test_mode = True

        run = uuid.uuid4().hex[:8]  # content differs from any earlier run on the same emulator day
        counter = iter(range(10**9))

        def content(side: str) -> tuple[str, str]:
            i = next(counter)
            return f"user{i % USERS + 1}", f"Nightly load {run}-{side}-{i} finished: 1,234 rows."

        op = DingTalkMessageOperator(task_id="notify", text="warm-up", userid_list="user1")
        token = op.hook.get_access_token()
        url = emulator.url + PATH
        agent_id = int(op.hook.app.agent_id or 0)
        headers = {"Content-Type": "application/json;charset=utf-8"}
        raw_session = requests.Session()

        def via_operator() -> object:
            op.userid_list, op.text = content("op")
            return op.execute(context={})

        def raw() -> object:
            user, text = content("raw")
            body = {"agent_id": agent_id, "msg": {"msgtype": "text", "text": {"content": text}}}
            body["userid_list"] = user
            resp = raw_session.post(
                url, params={"access_token": token}, data=dumps(body).encode("utf-8"), headers=headers
            )
            answer = resp.json()
            assert answer["errcode"] == 0, answer
            return answer["task_id"]

        for call in (via_operator, raw):  # warm-up: connections open, code paths hot
            timed_block(call, 20, [])
        # The request log is read once before and once after timing: reading it between blocks makes
        # the emulator serialise (and then free) thousands of records while the next block runs.
        logged_before = len(emulator.requests())

        times: dict[str, list[float]] = {"operator": [], "raw": [], "fresh": []}
        for _ in range(-(-messages // block)):
            timed_block(via_operator, block, times["operator"])
            timed_block(raw, block, times["raw"])

        def via_new_operator() -> object:
            user, text = content("new")
            fresh = DingTalkMessageOperator(task_id="notify", text=text, userid_list=user)
            return fresh.execute(context={})

        raw_for_fresh: list[float] = []
        for _ in range(-(-args.fresh // block) if args.fresh > 0 else 0):
            timed_block(via_new_operator, block, times["fresh"])
            timed_block(raw, block, raw_for_fresh)

        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(timed_block, via_operator, messages, [])
            pstats.Stats(profiler).sort_stats(args.profile_sort).print_stats(40)

        # Who sent what during timing: each message's content names its side. Anything else the
        # emulator received then (a gettoken, a second call) came from the operator.
        timed_log = emulator.requests()[logged_before:]
        by_side: Counter[str] = Counter(_side(record) for record in timed_log)
        # Each send has one recipient: filtered ones (143106 same content, 143105 daily limit) are
        # answered "ok" like DingTalk does, but never reach the inbox.
        inbox = emulator.inbox("work_notification")
        sends = emulator.requests(PATH)
        errors = sum(1 for r in sends if r["response"].get("errcode") != 0)
        log_io.close()

    op_n = len(times["operator"])
    print(
        f"python: {sys.executable}; emulator in its own process; {op_n} messages per side, blocks of {block}"
    )
    print(f"\n{'side':40} {'median µs':>10} {'mean µs':>10} {'p90 µs':>10}")
    rows = [
        ("operator", "DingTalkMessageOperator.execute"),
        ("raw", "raw requests.Session"),
        ("fresh", "new operator per message (no target)"),
    ]
    for name, label in rows:
        values = times[name]
        if len(values) < 2:
            continue
        p90 = statistics.quantiles(values, n=10)[-1]
        print(
            f"{label:40} {statistics.median(values) * 1e6:10.0f} {statistics.mean(values) * 1e6:10.0f}"
            f" {p90 * 1e6:10.0f}"
        )
    ratio = statistics.median(times["operator"]) / statistics.median(times["raw"])
    mean_ratio = statistics.mean(times["operator"]) / statistics.mean(times["raw"])
    print(f"\nratio operator/raw: median {ratio:.3f}, mean {mean_ratio:.3f}")
    if len(times["fresh"]) >= 2:
        fresh_ratio = statistics.median(times["fresh"]) / statistics.median(raw_for_fresh)
        print(f"ratio new-operator-per-message/raw (no target): median {fresh_ratio:.3f}")
    print(f"requests the emulator received while timing, by sender: {dict(by_side)}")
    print(f"work notifications delivered: {len(inbox)} of {len(sends)} sent (both sides); errors: {errors}")

    stray = {k: n for k, n in by_side.items() if k not in ("op", "raw", "new")}
    one_each = by_side["op"] == op_n and by_side["new"] == len(times["fresh"]) and not stray
    all_delivered = len(inbox) == len(sends) and errors == 0
    ok = ratio <= TARGET_RATIO and one_each and all_delivered
    verdict = "PASS" if ok else "FAIL"
    print(
        f"\n{verdict}: per-message ratio {ratio:.3f} (target ≤ {TARGET_RATIO}); "
        f"{by_side['op'] + sum(stray.values())} HTTP requests for {op_n} operator messages"
        f"{'' if one_each else f' (expected exactly one per message; also got {stray})'}"
        f"{'' if all_delivered else '; not every message was delivered'}"
    )
    return 1 if args.check and not ok else 0


def _side(record: dict[str, Any]) -> str:
    """``op``, ``raw`` or ``new`` for a work notification this script sent, else the request's path."""
    if record["path"] == PATH and isinstance(record["body"], dict):
        text = str(record["body"].get("msg", {}).get("text", {}).get("content", ""))
        for side in ("op", "raw", "new"):
            if f"-{side}-" in text:
                return side
    return str(record["path"])


if __name__ == "__main__":
    raise SystemExit(main())
