"""Alert storms: a custom robot takes 20 messages a minute; 200 tasks may fail in the same minute.

Each alert for a robot is first written to that robot's *spool* in the robot's
:class:`~airflow_provider_dingtalk.state.StateBackend`: with the file backend a private folder under
``state_dir()`` (``alerts-<pacer key>/``, one JSON file per alert, written atomically with
``write_private``), with Redis one hash per robot for the whole cluster. Whoever holds the robot's
drain lock then empties the spool:

* while the robot's window keeps :data:`HELD_SLOTS` of its 20 slots free after sending every
  waiting alert on its own, each is sent on its own (the *fast lane*: up to 10 a minute);
* beyond that the robot sends at most one message every :func:`lane_spacing` seconds (6.2 s: the
  other 10 slots spread over the window), and that message folds all waiting alerts into ONE
  summary (count, then DAG/run/task lines with log links, as many as fit in 20,000 bytes, then
  "…and N more"; a lone alert goes as itself); the folded alerts are logged;
* until the next such message may go, the notifier lets go of the lock and sleeps (bounded by its
  deadline), then tries again. Meanwhile other notifiers add their alerts, so one summary covers them.

Why the spacing: a failure callback runs in the task's process, and Airflow kills that process 20 s
after the task's final state (``[core] task_success_overtime``). Spent one by one, the robot's 20
slots would be gone in the first seconds of a storm, and a task failing after that would wait for
DingTalk's next minute, die first, and leave its alert in the spool with nobody to send it. With
half the window held back and spread, a slot comes within 6.2 s whenever the storm goes on.

A notifier whose alert is gone when it gets the lock returns at once: another process sent or
folded it. Alerts are removed only after DingTalk accepted the message that carries them.

Races, and why they are safe:

1. *Two processes (or threads) drain at once.* The drain lock (the backend's: flock plus a thread
   lock, or a Redis key with a lease) serialises them; an alert is read, sent and removed under it.
2. *A file appears while the holder sends.* The holder works from the list it took; the new file's
   owner is waiting for the lock and finds its file still there, so it drains it next.
3. *A file is half written.* ``write_private`` writes a ``.tmp-*`` file and renames it; the spool
   ignores dot files, so a reader sees a whole alert or none.
4. *An owner gives up* (its deadline passed, DingTalk down). Its file stays; the next drain for that
   robot sends or folds it, so the alert arrives late rather than never. Files older than
   :data:`SPOOL_MAX_AGE` are dropped, with an error listing them, so a dead robot can't grow the spool.
5. *A process dies between DingTalk's "ok" and the delete.* The next drain sends that alert again,
   with the ``msgUuid`` stored in its file (a fold: a hash of its members' ids), so DingTalk shows it
   once. Beyond DingTalk's de-duplication window delivery is at least once.
6. *Lock order.* The pacer takes its own lock inside ``send``; it never takes the drain lock, so the
   two cannot deadlock.
7. *Other senders* (operators on the same robot) use the same pacer. If they take a slot between our
   look at the pacer and our send, the send waits for the next slot (within the deadline).
8. *Several machines* share one spool and pacer through the Redis backend; with the file backend
   each machine has its own, so pacing is per machine.
9. *A drain lock holder dies* (Redis backend). Its lease (:data:`DRAIN_LEASE`) expires and the next
   notifier drains; one whose deadline comes first leaves its alert spooled.

When no shared state can be had (no private state folder), alerts go straight to the hook (paced
per process).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_dingtalk.exceptions import DingTalkValidationError

if TYPE_CHECKING:
    from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
    from airflow_provider_dingtalk.messages import Mentions, Message
    from airflow_provider_dingtalk.notifications._alert import AlertFacts
    from airflow_provider_dingtalk.robot_pacer import RobotPacer
    from airflow_provider_dingtalk.state import StateBackend

log = logging.getLogger(__name__)

SPOOL_MAX_AGE = 86400.0
"""Seconds after which an alert that could not be sent is dropped (and logged)."""
DRAIN_LEASE = 120.0
"""Seconds a drain lock in Redis outlives a holder that died (well above one drain's sends)."""
HELD_SLOTS = 10
"""Slots of a robot's window that alerts sent on their own leave free, for the spaced lane."""
_MSG_UUID_PLACEHOLDER = "0" * 32  # the hook adds a 32-hex msgUuid: count it when measuring


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpooledAlert:
    """One alert waiting in a robot's spool."""

    item: str  # its name in the spool: creation time first, so items sort oldest first
    created: float
    message: Message
    mentions: Mentions | None
    facts: dict[str, Any]
    msg_uuid: str  # the same on every send of this alert: DingTalk shows a resend once


class RobotAlertSpool:
    """The spool of one custom robot; see the module docstring.

    :param hook: the robot's hook (its pacer, clock and sleep are used).
    :param state: where the spool lives; ``None`` sends straight through the hook.
    """

    def __init__(self, hook: DingTalkCustomRobotHook, state: StateBackend | None) -> None:
        from airflow_provider_dingtalk.robot_pacer import pacer_key

        self.hook = hook
        self.state = state
        self._name = f"alerts-{pacer_key(hook.robot.host, hook.robot.token.reveal())}"
        self._clock: Callable[[], float] = hook.clock
        self._sleep: Callable[[float], None] = hook.sleep

    @classmethod
    def for_hook(cls, hook: DingTalkCustomRobotHook) -> RobotAlertSpool:
        state = hook.robot.state
        return cls(hook, state if state.shared else None)

    def deliver(
        self, message: Message, mentions: Mentions | None, facts: AlertFacts, *, deadline: float
    ) -> str:
        """Spool the alert and drain the spool until the alert is out or ``deadline`` (clock time) passes.

        :return: ``"sent"``, ``"folded"``, ``"by-other"`` (another notifier sent or folded it) or
            ``"spooled"`` (not sent yet: left for the next drain).
        :raises DingTalkError: DingTalk refused or could not be reached (the alert stays spooled).
        """
        if self.state is None:
            self.hook.send(message, mentions=mentions)
            return "sent"
        try:
            own = self._write(message, mentions, facts)
        except OSError as exc:
            log.warning("No alert spool (%s); sending this alert on its own.", exc)
            self.hook.send(message, mentions=mentions)
            return "sent"
        while True:
            try:
                outcome = self._drain(own, lock_wait=max(0.0, deadline - self._clock()))
            except TimeoutError:
                log.error(
                    "Another notifier held custom robot %s's alert spool past this alert's deadline; "
                    "the alert waits in the spool and goes out with the next alert to this robot.",
                    self.hook.robot.conn_id,
                )
                return "spooled"
            if isinstance(outcome, str):
                return outcome
            if outcome > deadline:
                log.error(
                    "Custom robot %s is busy until %.0f s from now; this alert waits in the spool and goes "
                    "out with the next alert to this robot.",
                    self.hook.robot.conn_id,
                    outcome - self._clock(),
                )
                return "spooled"
            self._sleep(max(0.0, outcome - self._clock()))

    def _drain(self, own: str, *, lock_wait: float) -> str | float:
        """Under the drain lock: send or fold what waits, or say when the robot's next slot opens."""
        assert self.state is not None
        with self.state.lock(f"{self._name}/drain", lease=DRAIN_LEASE, wait=lock_wait):
            if not self.state.spool_has(self._name, own):
                return "by-other"
            pending = self._pending()
            status = self.hook.pacer.status()
            if status.free >= len(pending) + HELD_SLOTS:
                self._send_each(pending)
                return "sent"
            lane_free_at = self._lane_free_at()
            if status.free >= 1 and lane_free_at <= self._clock():
                self._mark_lane()
                if len(pending) == 1:
                    self._send_each(pending)
                    return "sent"
                self._fold(pending)
                return "folded"
            return max(status.next_slot_at, lane_free_at)

    # -- the spaced lane ------------------------------------------------------------------------------

    def _lane_free_at(self) -> float:
        """When the spaced lane may send next (clock time): its last send plus the spacing."""
        assert self.state is not None
        last = self.state.get_blob(f"{self._name}.lane")
        try:
            return float(last) + lane_spacing(self.hook.pacer) if last else 0.0
        except ValueError:  # damaged: the pacer still holds DingTalk's limit
            return 0.0

    def _mark_lane(self) -> None:
        assert self.state is not None
        pacer = self.hook.pacer
        try:
            self.state.put_blob(f"{self._name}.lane", repr(self._clock()), ttl=pacer.window + pacer.margin)
        except OSError as exc:  # the pacer still holds DingTalk's limit; only the spacing is lost
            log.warning("Could not note the alert lane's last send (%s).", exc)

    # -- the spool --------------------------------------------------------------------------------

    def _write(self, message: Message, mentions: Mentions | None, facts: AlertFacts) -> str:
        assert self.state is not None
        now = self._clock()
        item = f"{int(now * 1e6):020d}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        entry = {
            "created": now,
            "message": {"type": type(message).__name__, "fields": dataclasses.asdict(message)},
            "mentions": dataclasses.asdict(mentions) if mentions is not None else None,
            "facts": summary_facts(facts),
            "msg_uuid": uuid.uuid4().hex,
        }
        self.state.spool_add(self._name, item, json.dumps(entry, ensure_ascii=False), ttl=SPOOL_MAX_AGE)
        return item

    def _pending(self) -> list[SpooledAlert]:
        assert self.state is not None
        alerts, expired = [], []
        for item, raw in self.state.spool_items(self._name):
            try:
                alert = _load(item, raw)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("Dropping a damaged alert spool entry %s: %s", item, exc)
                self.state.spool_remove(self._name, item)
                continue
            if alert.created < self._clock() - SPOOL_MAX_AGE:
                expired.append(alert)
                self.state.spool_remove(self._name, item)
            else:
                alerts.append(alert)
        if expired:
            log.error(
                "Dropped %d alert(s) that could not be sent for a day: %s",
                len(expired),
                ", ".join(_label(a.facts) for a in expired),
            )
        return alerts

    # -- sending ----------------------------------------------------------------------------------

    def _send_each(self, pending: Sequence[SpooledAlert]) -> None:
        for alert in pending:
            try:
                self.hook.send(alert.message, mentions=alert.mentions, msg_uuid=alert.msg_uuid)
            except (
                DingTalkValidationError
            ) as exc:  # this alert can never be sent; don't let it block the rest
                log.error("Dropping alert %s that DingTalk cannot take: %s", _label(alert.facts), exc)
            self._remove(alert)

    def _fold(self, pending: Sequence[SpooledAlert]) -> None:
        message, mentions, listed = summary_message(pending)
        # The same alerts folded again (after a crash before their files were removed) are the same summary.
        fold_uuid = hashlib.sha256("".join(a.msg_uuid for a in pending).encode()).hexdigest()[:32]
        self.hook.send(message, mentions=mentions, msg_uuid=fold_uuid)
        for alert in pending:
            self._remove(alert)
        log.warning(
            "Custom robot %s: %d alerts arrived faster than it may send, folded into one message "
            "(%d listed by name): %s",
            self.hook.robot.conn_id,
            len(pending),
            listed,
            ", ".join(_label(a.facts) for a in pending),
        )

    def _remove(self, alert: SpooledAlert) -> None:
        assert self.state is not None
        self.state.spool_remove(self._name, alert.item)


def lane_spacing(pacer: RobotPacer) -> float:
    """Seconds between the spaced lane's sends: the slots not held back, spread over the window."""
    return (pacer.window + pacer.margin) / max(1, pacer.limit - HELD_SLOTS)


def summary_facts(facts: AlertFacts) -> dict[str, Any]:
    """What a summary line needs of an alert."""
    return {
        "dag_id": facts.dag_id,
        "task_id": facts.task_id,
        "map_index": facts.map_index,
        "run_id": facts.run_id,
        "try_number": facts.try_number,
        "max_tries": facts.max_tries,
        "state": facts.state,
        "log_url": facts.log_url,
    }


def summary_message(
    pending: Sequence[SpooledAlert], *, limit: int | None = None
) -> tuple[Message, Mentions | None, int]:
    """One markdown message for all of ``pending``: as many lines as fit in ``limit`` bytes, then a count.

    :return: the message, the union of the alerts' mentions, and how many alerts it names.
    """
    from airflow_provider_dingtalk._json import dumps, utf8_len
    from airflow_provider_dingtalk.messages import (
        CUSTOM_ROBOT_MAX_BYTES,
        Markdown,
        to_custom_robot,
    )

    limit = limit or CUSTOM_ROBOT_MAX_BYTES
    mentions = _merged_mentions([a.mentions for a in pending])
    title = f"⚠️ {len(pending)} alerts (folded into one)"

    def build(named: int) -> Message:
        parts = [
            f"### {title}",
            f"The robot may send {_PER_MINUTE} messages a minute, so these {len(pending)} alerts "
            "arrive as one:",
        ]
        group: tuple[str, str] | None = None
        for alert in pending[:named]:
            facts = alert.facts
            key = (str(facts["dag_id"]), str(facts.get("run_id") or ""))
            if key != group:
                group = key
                parts.append(f"**{key[0]}** · {key[1]}" if key[1] else f"**{key[0]}**")
            parts.append(_line(facts))
        if named < len(pending):
            parts.append(f"…and {len(pending) - named} more (see the task logs in Airflow)")
        return Markdown(title=title, text="\n\n".join(parts))

    def fits(named: int) -> bool:
        try:
            body = to_custom_robot(build(named), mentions=mentions, msg_uuid=_MSG_UUID_PLACEHOLDER)
        except DingTalkValidationError:
            return False
        return utf8_len(dumps(body)) <= limit

    low, high = 0, len(pending)  # the largest count that fits, by bisection (size grows with count)
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return build(low), mentions, low


_PER_MINUTE = 20
_ICONS = {"failed": "❌", "up_for_retry": "🔁", "success": "✅", "awaiting_input": "✋"}


def _line(facts: dict[str, Any]) -> str:
    task = str(facts.get("task_id") or "(DAG run)")
    if facts.get("map_index") is not None:
        task += f"[{facts['map_index']}]"
    shown = f"[{task}]({facts['log_url']})" if facts.get("log_url") else task
    state = str(facts.get("state") or "")
    text = f"- {_ICONS.get(state, '•')} {shown} {state.replace('_', ' ')}"
    if facts.get("try_number") is not None:
        total = f" of {facts['max_tries'] + 1}" if facts.get("max_tries") is not None else ""
        text += f", try {facts['try_number']}{total}"
    return text


def _label(facts: dict[str, Any]) -> str:
    parts = [
        facts.get("dag_id"),
        facts.get("run_id"),
        facts.get("task_id"),
        facts.get("map_index"),
        facts.get("try_number"),
    ]
    return "/".join(str(p) for p in parts if p is not None)


def _merged_mentions(all_mentions: Sequence[Mentions | None]) -> Mentions | None:
    from airflow_provider_dingtalk.messages import Mentions

    given = [m for m in all_mentions if m is not None]
    if not given:
        return None
    mobiles = list(dict.fromkeys(x for m in given for x in m.mobiles))
    user_ids = list(dict.fromkeys(x for m in given for x in m.user_ids))
    return Mentions(mobiles=mobiles, user_ids=user_ids, at_all=any(m.at_all for m in given))


def _load(item: str, text: str) -> SpooledAlert:
    from airflow_provider_dingtalk.messages import ActionCard, Button, Markdown, Mentions, Text

    raw = json.loads(text)
    kinds: dict[str, Any] = {"Markdown": Markdown, "ActionCard": ActionCard, "Text": Text}
    fields = dict(raw["message"]["fields"])
    if "buttons" in fields:
        fields["buttons"] = [Button(**b) for b in fields["buttons"]]
    mentions = raw.get("mentions")
    return SpooledAlert(
        item=item,
        created=float(raw["created"]),
        message=kinds[raw["message"]["type"]](**fields),
        mentions=Mentions(**mentions) if mentions else None,
        facts=dict(raw["facts"]),
        msg_uuid=str(raw["msg_uuid"]),
    )
