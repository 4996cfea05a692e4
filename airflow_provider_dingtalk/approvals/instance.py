"""An approval instance as DingTalk's "Obtains the details of a single approval instance" page returns it.

``GET /v1.0/workflow/processInstances`` is the source of truth: events and wake-ups only say "look
again". ``status`` is ``RUNNING``, ``TERMINATED`` (revoked) or ``COMPLETED``; a completed instance's
``result`` is ``agree`` or ``refuse``. Any other status is taken as still open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

FINAL_STATUSES = frozenset({"COMPLETED", "TERMINATED"})
Outcome = Literal["agree", "refuse", "terminated", "running"]
# operationRecords[].type values that are an approver acting on a task, or the revoke
_DECIDING = frozenset({"EXECUTE_TASK_NORMAL", "EXECUTE_TASK_AGENT", "EXECUTE_TASK_AUTO"})
_REVOKING = "TERMINATE_PROCESS_INSTANCE"


@dataclass(frozen=True, kw_only=True)
class ApprovalDecision:
    """One approver's action (or the revoke), from ``operationRecords``."""

    user_id: str
    action: str  # "agree", "refuse" or "terminate"
    remark: str
    date: str


@dataclass(frozen=True, kw_only=True)
class ApprovalInstance:
    """What a task needs to know about an approval: where it stands and who decided what.

    ``create_time``/``finish_time`` are DingTalk's strings (``yyyy-MM-ddTHH:mmZ``, UTC, minutes).
    """

    instance_id: str
    status: str
    result: str
    business_id: str = ""
    title: str = ""
    originator_user_id: str = ""
    create_time: str = ""
    finish_time: str | None = None
    decisions: tuple[ApprovalDecision, ...] = ()
    form_values: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_api(cls, instance_id: str, result: Mapping[str, Any]) -> ApprovalInstance:
        decisions = []
        for record in result.get("operationRecords") or ():
            kind, outcome = record.get("type"), str(record.get("result") or "").lower()
            if kind in _DECIDING and outcome in ("agree", "refuse"):
                action = outcome
            elif kind == _REVOKING:
                action = "terminate"
            else:
                continue
            decisions.append(
                ApprovalDecision(
                    user_id=str(record.get("userId") or ""),
                    action=action,
                    remark=str(record.get("remark") or ""),
                    date=str(record.get("date") or ""),
                )
            )
        return cls(
            instance_id=instance_id,
            status=str(result.get("status") or ""),
            result=str(result.get("result") or ""),
            business_id=str(result.get("businessId") or ""),
            title=str(result.get("title") or ""),
            originator_user_id=str(result.get("originatorUserId") or ""),
            create_time=str(result.get("createTime") or ""),
            finish_time=result.get("finishTime") or None,
            decisions=tuple(decisions),
            form_values=tuple(
                (str(v.get("name")), str(v.get("value")))
                for v in result.get("formComponentValues") or ()
                if isinstance(v, Mapping)
            ),
        )

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def outcome(self) -> Outcome:
        if self.status == "TERMINATED":
            return "terminated"
        if self.status == "COMPLETED":
            return "refuse" if self.result == "refuse" else "agree"
        return "running"

    @property
    def deciding(self) -> tuple[ApprovalDecision, ...]:
        """The actions that made the outcome: every agree, the refuse, or the revoke."""
        wanted = {"agree": "agree", "refuse": "refuse", "terminated": "terminate"}.get(self.outcome)
        return tuple(d for d in self.decisions if d.action == wanted)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for XCom and trigger events: what the issue promises plus the full record."""
        deciding = self.deciding
        return {
            "instance_id": self.instance_id,
            "business_id": self.business_id,
            "status": self.status,
            "result": self.result,
            "outcome": self.outcome,
            "decided_by": [d.user_id for d in deciding],
            "remarks": [d.remark for d in deciding if d.remark],
            "finish_time": self.finish_time,
            "create_time": self.create_time,
            "title": self.title,
            "originator_user_id": self.originator_user_id,
            "decisions": [asdict(d) for d in self.decisions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalInstance:
        return cls(
            instance_id=str(data["instance_id"]),
            status=str(data.get("status") or ""),
            result=str(data.get("result") or ""),
            business_id=str(data.get("business_id") or ""),
            title=str(data.get("title") or ""),
            originator_user_id=str(data.get("originator_user_id") or ""),
            create_time=str(data.get("create_time") or ""),
            finish_time=data.get("finish_time"),
            decisions=tuple(ApprovalDecision(**d) for d in data.get("decisions") or ()),
        )
