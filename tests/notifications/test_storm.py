"""Alert storms on one custom robot: 200 failures at once, paced and folded, none lost, never blocked."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from airflow_provider_dingtalk._json import dumps, utf8_len
from airflow_provider_dingtalk.messages import Markdown, Mentions, to_custom_robot
from airflow_provider_dingtalk.notifications import DingTalkCustomRobotNotifier
from airflow_provider_dingtalk.notifications._storm import SpooledAlert, summary_message
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator, EmulatorTime
from tests.helpers import FAST, fake_context

BURST = 200


def accounted_tasks(messages: list[dict[str, Any]]) -> tuple[list[str], int]:
    """Task ids named in the delivered messages, and how many more the summaries count without naming."""
    named: list[str] = []
    unnamed = 0
    for message in messages:
        text = (
            message["markdown"]["text"] if message["msgtype"] == "markdown" else message["actionCard"]["text"]
        )
        if "folded into one" in text:
            named += re.findall(r"\[(t\d+)\[3\]\]\(", text)
            unnamed += sum(int(n) for n in re.findall(r"…and (\d+) more", text))
        else:
            named += re.findall(r"Task failed: etl\.(t\d+)\[3\]", text)[:1]
    return named, unnamed


def test_a_burst_of_200_failures_is_paced_folded_and_complete(
    robot_conn: DingTalkEmulator, tmp_path: Path
) -> None:
    fake = EmulatorTime(robot_conn)
    notifier = DingTalkCustomRobotNotifier(retry_policy=FAST, timeout=300, clock=fake.clock, sleep=fake.sleep)
    threads = [
        threading.Thread(target=notifier, args=(fake_context(task_id=f"t{i}", exception=f"error {i}"),))
        for i in range(BURST)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    requests = robot_conn.requests("/robot/send")
    assert [r.response["errcode"] for r in requests if r.response["errcode"] != 0] == []  # never 130101
    delivered = robot_conn.inbox("custom_robot")
    times = sorted(d.time for d in delivered)
    busiest = max(sum(1 for t in times if start <= t < start + 60) for start in times)
    assert busiest <= 20
    named, unnamed = accounted_tasks([d.message for d in delivered])
    assert len(named) == len(set(named))  # nobody told twice
    assert len(named) + unnamed == BURST
    assert any("folded into one" in str(d.message) for d in delivered)  # the storm was folded
    assert len(delivered) < BURST
    spool = [p for p in (tmp_path / "state").glob("alerts-*/*.json")]
    assert spool == []  # nothing left behind


def test_failures_a_second_apart_never_wait_out_the_robots_minute(
    robot_conn: DingTalkEmulator, tmp_path: Path
) -> None:
    """Airflow kills a task process 20 s after its final state ([core] task_success_overtime), failure
    callback included: a notifier there cannot wait a minute for the robot. 30 tasks failing a second
    apart, each notifier given 15 s, all get out (before: the first 20 used the robot's minute one by
    one, the last 10 waited for the next one past their time and were left in the spool)."""
    fake = EmulatorTime(robot_conn)
    for i in range(30):
        notifier = DingTalkCustomRobotNotifier(
            retry_policy=FAST, timeout=15, clock=fake.clock, sleep=fake.sleep
        )
        notifier(fake_context(task_id=f"t{i}"))
        fake.sleep(1.0)

    delivered = robot_conn.inbox("custom_robot")
    named, unnamed = accounted_tasks([d.message for d in delivered])
    assert sorted(named, key=lambda t: int(t[1:])) == [f"t{i}" for i in range(30)] and unnamed == 0
    assert [p for p in (tmp_path / "state").glob("alerts-*/*.json")] == []
    assert fake.slept < 30 + 30 * 7  # no notifier waited more than a fold's spacing
    assert [r.response["errcode"] for r in robot_conn.requests("/robot/send") if r.response["errcode"]] == []


def test_an_alert_left_behind_goes_out_with_the_next_one(robot_conn: DingTalkEmulator) -> None:
    fake = EmulatorTime(robot_conn)
    robot_conn.inject("/robot/send", status=503, times=50)  # DingTalk down for the first alert
    # The send gives up by itself after FAST's attempts, long before a timeout a loaded machine could hit.
    first = DingTalkCustomRobotNotifier(retry_policy=FAST, timeout=60, clock=fake.clock, sleep=fake.sleep)
    first(fake_context(task_id="t1"))
    assert robot_conn.calls("/robot/send") == FAST.attempts
    assert robot_conn.inbox("custom_robot") == []
    with robot_conn.state.lock:
        robot_conn.state.faults.clear()
    notifier = DingTalkCustomRobotNotifier(retry_policy=FAST, clock=fake.clock, sleep=fake.sleep)
    notifier(fake_context(task_id="t2"))
    named, _ = accounted_tasks([d.message for d in robot_conn.inbox("custom_robot")])
    assert sorted(named) == ["t1", "t2"]


def test_an_alert_resent_after_a_crash_is_shown_once(robot_conn: DingTalkEmulator) -> None:
    """A process dies after DingTalk took its alert but before the spool file went: the resend is a repeat."""
    import os
    import shutil

    fake = EmulatorTime(robot_conn)
    robot_conn.inject("/robot/send", status=503, times=50)  # DingTalk down: t1 stays spooled
    # Given up after FAST's attempts, not cut off by the timeout: the spool file is written by then.
    DingTalkCustomRobotNotifier(retry_policy=FAST, timeout=60, clock=fake.clock, sleep=fake.sleep)(
        fake_context(task_id="t1")
    )
    assert robot_conn.calls("/robot/send") == FAST.attempts
    (spooled,) = Path(os.environ["AIRFLOW_DINGTALK_STATE_DIR"]).glob("alerts-*/[0-9]*.json")
    kept = shutil.copy(spooled, spooled.parent / "kept")
    with robot_conn.state.lock:
        robot_conn.state.faults.clear()
    notifier = DingTalkCustomRobotNotifier(retry_policy=FAST, clock=fake.clock, sleep=fake.sleep)
    notifier(fake_context(task_id="t2"))
    assert not spooled.exists()  # t1 went out with t2 and its file was removed ...
    Path(kept).rename(spooled)  # ... but as if that process died first: the file is back
    notifier(fake_context(task_id="t3"))
    assert not spooled.exists()
    sends = [r.body for r in robot_conn.requests("/robot/send") if r.status == 200]
    t1_uuids = {b["msgUuid"] for b in sends if "etl.t1[3]" in dumps(b)}
    assert len(t1_uuids) == 1  # the resend carried the same msgUuid ...
    named, _ = accounted_tasks([d.message for d in robot_conn.inbox("custom_robot")])
    assert sorted(named) == ["t1", "t2", "t3"]  # ... so DingTalk showed t1 once


def _spooled(i: int, url_len: int = 200) -> SpooledAlert:
    facts = {
        "dag_id": f"dag_{i % 3}",
        "task_id": f"t{i}",
        "map_index": 3,
        "run_id": "scheduled__2025-01-01",
        "try_number": 1,
        "max_tries": 0,
        "state": "failed",
        "log_url": "https://airflow.example.com/" + "x" * url_len,
    }
    mentions = Mentions(user_ids=[f"user{i % 2}"])
    return SpooledAlert(item=f"{i:020d}", created=0.0, message=Markdown(title="t", text="t"),
                        mentions=mentions, facts=facts, msg_uuid=f"uuid{i}")  # fmt: skip


def test_summary_lists_what_fits_in_20000_bytes_then_counts_the_rest() -> None:
    pending = [_spooled(i) for i in range(500)]
    message, mentions, listed = summary_message(pending)
    size = utf8_len(dumps(to_custom_robot(message, mentions=mentions, msg_uuid="0" * 32)))
    assert 19_000 < size <= 20_000
    assert 0 < listed < 500 and f"…and {500 - listed} more" in message.text  # type: ignore[attr-defined]
    assert "500 alerts" in message.title  # type: ignore[attr-defined]
    assert mentions is not None and sorted(mentions.user_ids) == ["user0", "user1"]


def test_summary_of_a_few_names_them_all_grouped_by_dag_and_run() -> None:
    message, _, listed = summary_message([_spooled(i, url_len=10) for i in range(4)])
    text = message.text  # type: ignore[attr-defined]
    assert listed == 4 and "more" not in text.split("arrive as one:")[1]
    assert text.count("**dag_0** · scheduled__2025-01-01") == 2  # t0, then t3 after dag_1 and dag_2
    assert "❌ [t2[3]](https://airflow.example.com/xxxxxxxxxx) failed, try 1 of 1" in text
