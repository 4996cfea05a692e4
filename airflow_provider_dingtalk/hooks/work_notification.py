"""Work notifications (工作通知): send, track delivery, recall, update the OA status bar, upload media.

Built on :class:`~airflow_provider_dingtalk.hooks.base.DingTalkBaseHook` ``call_oapi``.
Every argument is checked before the access token is fetched, so a bad call sends nothing at all.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from airflow_provider_dingtalk.exceptions import (
    DingTalkAPIError,
    DingTalkError,
    DingTalkPartialSendError,
    DingTalkValidationError,
)
from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook
from airflow_provider_dingtalk.messages import Message, parse_work_notification, to_work_notification
from airflow_provider_dingtalk.messages import _checks as check

# DingTalk's per-call caps for an internal app, as its own SDK enforces them for asyncsend_v2
# (OapiMessageCorpconversationAsyncsendV2Request). The one place they are written down.
MAX_USERIDS_PER_CALL = 5000
MAX_DEPT_IDS_PER_CALL = 500
# DingTalk takes 5,000 recipients a minute per app and filters the rest with 143103, seen only in
# getsendresult (its "Asynchronous sending of enterprise session messages" page, flow-control table):
# the calls of one send go a minute apart.
RECIPIENTS_WINDOW = 60.0
# DingTalk's documented media upload limits ("Upload media files", /media/upload), checked before uploading.
MEDIA_MAX_BYTES = {"image": 1 * 1024 * 1024, "voice": 2 * 1024 * 1024, "file": 10 * 1024 * 1024}

_API = "/topapi/message/corpconversation"
SEND_PATH = f"{_API}/asyncsend_v2"
PROGRESS_PATH = f"{_API}/getsendprogress"
RESULT_PATH = f"{_API}/getsendresult"
RECALL_PATH = f"{_API}/recall"
STATUS_BAR_PATH = f"{_API}/status_bar/update"
MEDIA_UPLOAD_PATH = "/media/upload"

PROGRESS_DONE = 2


@dataclass(frozen=True, kw_only=True)
class SendProgress:
    """What ``getsendprogress`` says: ``status`` 0 not started, 1 in progress, 2 done."""

    status: int
    progress_in_percent: int

    @property
    def done(self) -> bool:
        return self.status == PROGRESS_DONE


@dataclass(frozen=True, kw_only=True)
class ForbiddenUser:
    """A recipient DingTalk filtered out, with why (``code``, e.g. ``"143106"`` same content twice a day,
    ``"143105"`` over 500 a day) and the threshold that applied (``count``)."""

    userid: str
    code: str
    count: int | None = None


@dataclass(frozen=True, kw_only=True)
class SendResult:
    """What ``getsendresult`` says about one task. Use :meth:`to_dict`/:meth:`from_dict` for XCom."""

    invalid_user_id_list: list[str] = field(default_factory=list)
    forbidden_user_id_list: list[str] = field(default_factory=list)
    failed_user_id_list: list[str] = field(default_factory=list)
    read_user_id_list: list[str] = field(default_factory=list)
    unread_user_id_list: list[str] = field(default_factory=list)
    invalid_dept_id_list: list[int] = field(default_factory=list)
    forbidden_list: list[ForbiddenUser] = field(default_factory=list)

    @property
    def undelivered(self) -> bool:
        """True when any recipient was invalid, forbidden or failed."""
        return bool(
            self.invalid_user_id_list
            or self.forbidden_user_id_list
            or self.failed_user_id_list
            or self.invalid_dept_id_list
            or self.forbidden_list
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SendResult:
        """Build from DingTalk's ``send_result`` object (or from :meth:`to_dict`)."""
        forbidden = [
            ForbiddenUser(
                userid=str(item.get("userid", "")),
                code=str(item.get("code", "")),
                count=None if item.get("count") is None else int(item["count"]),
            )
            for item in raw.get("forbidden_list") or []
        ]
        return cls(
            invalid_user_id_list=[str(u) for u in raw.get("invalid_user_id_list") or []],
            forbidden_user_id_list=[str(u) for u in raw.get("forbidden_user_id_list") or []],
            failed_user_id_list=[str(u) for u in raw.get("failed_user_id_list") or []],
            read_user_id_list=[str(u) for u in raw.get("read_user_id_list") or []],
            unread_user_id_list=[str(u) for u in raw.get("unread_user_id_list") or []],
            invalid_dept_id_list=[int(d) for d in raw.get("invalid_dept_id_list") or []],
            forbidden_list=forbidden,
        )


class DingTalkWorkNotificationHook(DingTalkBaseHook):
    """Work notifications (工作通知): send, track delivery, recall, update the OA status bar, upload media.

    :param dingtalk_conn_id: a connection of type ``dingtalk`` (default ``dingtalk_default``).
    :param retry_policy: override the default retry policy (attempts, backoff, total time).
    """

    def send_work_notification(
        self,
        message: Message | Mapping[str, Any],
        *,
        userid_list: Sequence[str] | str | None = None,
        dept_id_list: Sequence[int | str] | str | None = None,
        to_all_user: bool = False,
        agent_id: int | str | None = None,
        on_repeated_send: Callable[[int], None] | None = None,
    ) -> list[int]:
        """Send a work notification, in as many calls as DingTalk's per-call caps need.

        Recipients are de-duplicated (first occurrence kept) and split into calls of at most
        :data:`MAX_USERIDS_PER_CALL` user ids and :data:`MAX_DEPT_IDS_PER_CALL` department ids.
        DingTalk answers success even for recipients it filters (same content twice a day, over 500
        a day); :meth:`get_send_result` tells who did not get it.

        :param message: a :class:`~airflow_provider_dingtalk.messages.Message`, or a raw ``msg`` dict
            (read by :func:`~airflow_provider_dingtalk.messages.parse_work_notification`).
        :param userid_list: DingTalk user ids (a list, or a comma-separated string).
        :param dept_id_list: department ids, a list or a comma-separated string (DingTalk includes
            sub-departments).
        :param to_all_user: send to the whole organisation (DingTalk allows this 3 times a day);
            cannot be combined with the lists.
        :param agent_id: the app's AgentId; defaults to the connection's ``agent_id`` extra.
        :param on_repeated_send: called with the task id of a call that was repeated after an attempt
            got no answer. DingTalk may have sent the lost attempt, and then reports the repeat's
            recipients as filtered with 143106 (the same content the same day) although they got it.
        :return: the task ids, one per call.
        :raises DingTalkValidationError: bad message or recipients, before anything is sent.
        :raises DingTalkPartialSendError: a later call failed after earlier ones were sent.
        """
        to_all_user = check.flag(to_all_user, "to_all_user")
        rendered = _render(message)
        users = _dedup(_userid(u) for u in check.id_list(userid_list, "userid_list"))
        depts = _dedup(_dept_id(d) for d in check.id_list(dept_id_list, "dept_id_list"))
        if to_all_user and (users or depts):
            raise DingTalkValidationError(
                "to_all_user", "cannot be combined with userid_list or dept_id_list; give one or the other"
            )
        if not (to_all_user or users or depts):
            raise DingTalkValidationError(
                "userid_list", "no recipients: give userid_list and/or dept_id_list, or to_all_user=True"
            )
        agent = self._agent_id(agent_id)
        if to_all_user:
            self.log.warning(
                "Sending a work notification to EVERY member of the organisation (to_all_user=True); "
                "DingTalk allows this 3 times a day per app."
            )
            body = {"agent_id": agent, "to_all_user": True, "msg": rendered}
            return [self._send_chunk(body, on_repeated_send)]
        user_chunks = _chunks(users, MAX_USERIDS_PER_CALL)
        dept_chunks = _chunks(depts, MAX_DEPT_IDS_PER_CALL)
        calls = max(len(user_chunks), len(dept_chunks))
        sent: list[dict[str, Any]] = []
        last_sent = 0.0
        for i in range(calls):
            chunk_users = user_chunks[i] if i < len(user_chunks) else []
            chunk_depts = dept_chunks[i] if i < len(dept_chunks) else []
            if i:
                wait = last_sent + RECIPIENTS_WINDOW - self.clock()
                if wait > 0:
                    self.log.info(
                        "DingTalk takes 5,000 recipients a minute per app: waiting %.0f s before call %d "
                        "of %d.",
                        wait,
                        i + 1,
                        calls,
                    )
                    self.sleep(wait)
            last_sent = self.clock()
            body = {"agent_id": agent, "msg": rendered}
            if chunk_users:
                body["userid_list"] = ",".join(chunk_users)
            if chunk_depts:
                body["dept_id_list"] = ",".join(chunk_depts)
            try:
                task_id = self._send_chunk(body, on_repeated_send)
            except DingTalkError as exc:
                if not sent:
                    raise
                raise DingTalkPartialSendError(
                    cause=exc,
                    sent=sent,
                    unsent={
                        "userid_list": [u for c in user_chunks[i:] for u in c],
                        "dept_id_list": [d for c in dept_chunks[i:] for d in c],
                    },
                ) from exc
            sent.append({"task_id": task_id, "userid_list": chunk_users, "dept_id_list": chunk_depts})
            self.log.debug(
                "Work notification call %d/%d sent to %d users and %d departments: task id %s",
                i + 1, calls, len(chunk_users), len(chunk_depts), task_id,
            )  # fmt: skip
        task_ids = [s["task_id"] for s in sent]
        # One line for a batched send. A single send logs at DEBUG only: its task id is the return value
        # (the operator's XCom), and an INFO line costs ~5 % of a loopback call (benchmarks/per_message.py).
        if calls > 1:
            self.log.info(
                "Work notification sent in %d calls to %d users and %d departments: task ids %s",
                calls, len(users), len(depts), task_ids,
            )  # fmt: skip
        return task_ids

    def get_send_progress(self, task_id: int, *, agent_id: int | str | None = None) -> SendProgress:
        """How far DingTalk got with sending task ``task_id`` (tasks of the last 24 hours).

        :param task_id: a task id returned by :meth:`send_work_notification`.
        :param agent_id: the app's AgentId; defaults to the connection's.
        """
        body = {"agent_id": self._agent_id(agent_id), "task_id": _task_id(task_id, "task_id")}
        progress = self.call_oapi("POST", PROGRESS_PATH, json=body).get("progress") or {}
        return SendProgress(
            status=int(progress.get("status", 0)),
            progress_in_percent=int(progress.get("progress_in_percent", 0)),
        )

    def get_send_result(self, task_id: int, *, agent_id: int | str | None = None) -> SendResult:
        """Who got task ``task_id``, who did not and why (tasks of the last 24 hours).

        :param task_id: a task id returned by :meth:`send_work_notification`.
        :param agent_id: the app's AgentId; defaults to the connection's.
        """
        body = {"agent_id": self._agent_id(agent_id), "task_id": _task_id(task_id, "task_id")}
        return SendResult.from_dict(self.call_oapi("POST", RESULT_PATH, json=body).get("send_result") or {})

    def recall(self, task_id: int, *, agent_id: int | str | None = None) -> None:
        """Withdraw a sent work notification from every recipient.

        :param task_id: a task id returned by :meth:`send_work_notification`.
        :param agent_id: the app's AgentId; defaults to the connection's.
        """
        body = {"agent_id": self._agent_id(agent_id), "msg_task_id": _task_id(task_id, "task_id")}
        self.call_oapi("POST", RECALL_PATH, json=body)

    def update_status_bar(
        self,
        task_id: int,
        status_value: str,
        status_bg: str | None = None,
        *,
        agent_id: int | str | None = None,
    ) -> None:
        """Change the status bar of an OA message that was sent with one.

        :param task_id: a task id returned by :meth:`send_work_notification`.
        :param status_value: the new status text, e.g. ``"Done"``.
        :param status_bg: the new colour, ``0x`` and 8 hex digits ARGB.
        :param agent_id: the app's AgentId; defaults to the connection's.
        """
        body: dict[str, Any] = {
            "agent_id": self._agent_id(agent_id),
            "task_id": _task_id(task_id, "task_id"),
            "status_value": check.text(status_value, "status_value"),
        }
        if status_bg is not None:
            body["status_bg"] = check.argb(status_bg, "status_bg", prefix="0x")
        self.call_oapi("POST", STATUS_BAR_PATH, json=body)

    def upload_media(self, path: str | os.PathLike[str], media_type: str) -> str:
        """Upload a local file for an image, voice or file message.

        :param path: the local file.
        :param media_type: ``"image"`` (≤ 1 MB), ``"voice"`` (AMR, ≤ 2 MB) or ``"file"`` (≤ 10 MB).
        :return: the ``media_id`` to put in the message.
        """
        if media_type not in MEDIA_MAX_BYTES:
            raise DingTalkValidationError(
                "media_type", f"must be one of {', '.join(MEDIA_MAX_BYTES)}; got {media_type!r}"
            )
        if not os.path.isfile(path):
            raise DingTalkValidationError("path", f"{os.fspath(path)!r} is not a readable file")
        size = os.path.getsize(path)
        limit = MEDIA_MAX_BYTES[media_type]
        if size == 0:
            raise DingTalkValidationError("path", f"{os.fspath(path)!r} is empty")
        if size > limit:
            raise DingTalkValidationError(
                "path", f"is too large for a {media_type} upload (bytes)", size=size, limit=limit
            )
        with open(path, "rb") as fh:
            content = fh.read()
        name = os.path.basename(os.fspath(path))
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        answer = self.call_oapi(
            "POST", MEDIA_UPLOAD_PATH, params={"type": media_type}, files={"media": (name, content, ctype)}
        )
        media_id = str(answer.get("media_id") or "")
        if not media_id:
            raise DingTalkValidationError("media_id", "DingTalk answered the upload without a media_id")
        self.log.info("Uploaded %s (%d bytes) as %s media %s", name, size, media_type, media_id)
        return media_id

    def upload_message_media(self, message: Message) -> Message:
        """If ``message`` is an image, voice or file message with a local ``path``, upload it and return a
        copy that refers to the ``media_id``; any other message is returned as it is."""
        from airflow_provider_dingtalk.messages import File, Image, Voice

        if isinstance(message, Image | Voice | File) and message.path is not None:
            kind = _media_type(message)
            if message.media_id is not None:
                raise DingTalkValidationError(f"message.{kind}", "give media_id or path, not both")
            return message.with_media_id(self.upload_media(message.path, kind))
        return message

    # -- helpers -------------------------------------------------------------------------------

    def _agent_id(self, agent_id: int | str | None) -> int:
        value = agent_id if agent_id not in (None, "") else self.app.agent_id
        if value in (None, ""):
            raise DingTalkValidationError(
                "agent_id",
                f"is required for work notifications: pass agent_id, or set Agent ID (the schema field) "
                f"of connection {self.dingtalk_conn_id!r} (developer console → app → basic information)",
            )
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit():
            raise DingTalkValidationError("agent_id", f"must be the app's numeric AgentId, not {text!r}")
        return int(text)

    def _send_chunk(self, body: dict[str, Any], on_repeated_send: Callable[[int], None] | None) -> int:
        lost: list[bool] = []
        answer = self.call_oapi(
            "POST",
            SEND_PATH,
            json=body,
            on_no_answer=partial(lost.append, True) if on_repeated_send else None,
        )
        task_id = answer.get("task_id")
        if isinstance(task_id, bool) or not str(task_id).isdigit():
            raise DingTalkAPIError(errmsg="the send was answered without a task_id", api=SEND_PATH)
        if lost and on_repeated_send:
            on_repeated_send(int(str(task_id)))
        return int(str(task_id))


def _render(msg: Message | Mapping[str, Any]) -> dict[str, Any]:
    # A raw dict is read into the model, so it meets the same checks as a typed message.
    return to_work_notification(msg if isinstance(msg, Message) else parse_work_notification(msg))


def _userid(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or "," in value:
        raise DingTalkValidationError(
            "userid_list", f"each user id must be a non-empty string without commas, not {value!r}"
        )
    return value.strip()


def _dept_id(value: object) -> str:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise DingTalkValidationError("dept_id_list", f"each department id must be a number, not {value!r}")
    return str(int(text))


def _dedup(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _task_id(value: object, name: str) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise DingTalkValidationError(name, f"must be a DingTalk task id (a number), not {value!r}")
    return int(text)


def _media_type(msg: Message) -> str:
    return type(msg).__name__.lower()
