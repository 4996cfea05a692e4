"""DingTalk event types (``EventType`` / ``call_back_tag``) and the Airflow assets they become.

Light on purpose: DAG files import it to name the asset they are scheduled on.
"""

from __future__ import annotations

__all__ = [
    "CALL_BACK_TAGS",
    "EVENT_ASSET_PREFIX",
    "ROBOT_MESSAGE_ASSET_URI",
    "event_asset_uri",
    "is_known_tag",
]

EVENT_ASSET_PREFIX = "dingtalk://events/"

# Every call_back_tag the register API accepts (DingTalk's server API doc source,
# github.com/ddtalk/dingTalkDoc ``_server.md``; dingtalk-sdk ALL_CALL_BACK_TAGS).
# ``edu_*`` tags exist too and are accepted by prefix.
CALL_BACK_TAGS: frozenset[str] = frozenset(
    {
        # address book
        "user_add_org", "user_modify_org", "user_leave_org", "user_active_org",
        "org_admin_add", "org_admin_remove", "org_dept_create", "org_dept_modify", "org_dept_remove",
        "org_remove", "org_change", "label_user_change", "label_conf_add", "label_conf_modify",
        "label_conf_del",
        # chats
        "chat_add_member", "chat_remove_member", "chat_quit", "chat_update_owner", "chat_update_title",
        "chat_disband", "chat_disband_microapp",
        # check-in, approvals, attendance, meeting rooms
        "check_in", "bpms_task_change", "bpms_instance_change",
        "attendance_check_record", "attendance_schedule_change", "attendance_overtime_duration",
        "meetingroom_book", "meetingroom_room_info",
    }
)  # fmt: skip


def is_known_tag(tag: str) -> bool:
    """Whether DingTalk accepts ``tag`` in ``call_back_tag``."""
    return tag in CALL_BACK_TAGS or tag.startswith("edu_")


def event_asset_uri(event_type: str) -> str:
    """The URI of the asset an event of this type updates: ``dingtalk://events/<EventType>``.

    :param event_type: e.g. ``"bpms_instance_change"``.
    """
    return EVENT_ASSET_PREFIX + event_type


ROBOT_MESSAGE_ASSET_URI = "dingtalk://robot/messages"
"""The asset a robot message (someone @-mentioned the app robot, received over Stream) updates."""
