"""App robot (v1.0) through DingTalkAppRobotHook against the emulator: group and one-to-one sends."""

from __future__ import annotations

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError
from airflow_provider_dingtalk.hooks.app_robot import DingTalkAppRobotHook
from airflow_provider_dingtalk.messages import Markdown, Text
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import FAST, Logs

GROUP = "/v1.0/robot/groupMessages/send"
OTO = "/v1.0/robot/oToMessages/batchSend"


def hook() -> DingTalkAppRobotHook:
    return DingTalkAppRobotHook(retry_policy=FAST)


def test_group_message_arrives_with_the_appkey_as_robot_code(dingtalk_conn: DingTalkEmulator) -> None:
    key = hook().send_robot_group_message(
        Markdown(title="Build", text="## done"), open_conversation_id="cid123"
    )
    (delivered,) = dingtalk_conn.inbox("app_robot_group")
    assert delivered.target == "cid123" and delivered.meta["process_query_key"] == key
    assert delivered.message == {
        "msgKey": "sampleMarkdown",
        "msgParam": {"title": "Build", "text": "## done"},
    }
    (request,) = dingtalk_conn.requests(GROUP)
    assert request.body["robotCode"] == dingtalk_conn.app.app_key
    assert isinstance(request.body["msgParam"], str)  # a JSON string, as the API wants
    assert "coolAppCode" not in request.body


def test_group_errors_carry_dingtalks_code(dingtalk_conn: DingTalkEmulator) -> None:
    with pytest.raises(DingTalkAPIError) as err:
        hook().send_robot_group_message(Text(content="x"), open_conversation_id="nope")
    assert (err.value.code, err.value.http_status) == ("invalid.openConversationId", 400)
    with pytest.raises(DingTalkAPIError) as err:
        hook().send_robot_group_message(Text(content="x"), open_conversation_id="cid1", robot_code="other")
    assert err.value.code == "invalidParameter.robotCode.invalid"


def test_45_users_go_out_in_3_calls_and_unknown_users_are_reported(dingtalk_conn: DingTalkEmulator) -> None:
    users = [f"user{i}" for i in range(44)] + ["ghost"]
    results = hook().send_robot_direct_message(
        Text(content="hi"), user_ids=[*users, "user0"]
    )  # duplicate sent once
    assert [len(r.user_ids) for r in results] == [20, 20, 5]
    assert [len(r.body["userIds"]) for r in dingtalk_conn.requests(OTO)] == [20, 20, 5]
    assert results[-1].invalid_user_ids == ("ghost",)
    assert sorted(d.target for d in dingtalk_conn.inbox("app_robot_oto")) == sorted(users[:-1])
    assert len({r.process_query_key for r in results}) == 3


def test_more_than_20_in_one_call_is_refused_by_the_emulator(dingtalk_conn: DingTalkEmulator) -> None:
    with pytest.raises(DingTalkAPIError) as err:
        hook().call_api(
            "POST",
            OTO,
            json={
                "robotCode": dingtalk_conn.app.app_key,
                "userIds": [f"user{i}" for i in range(21)],
                "msgKey": "sampleText",
                "msgParam": '{"content":"x"}',
            },
        )
    assert err.value.code == "invalidParameter.userIds.overMax"


def test_msg_param_limit_is_checked_before_sending(dingtalk_conn: DingTalkEmulator) -> None:
    with pytest.raises(DingTalkValidationError) as err:
        hook().send_robot_group_message(Text(content="字" * 5001), open_conversation_id="cid1")
    assert err.value.limit == 15000
    assert dingtalk_conn.calls(GROUP) == 0
    with pytest.raises(DingTalkValidationError):
        hook().send_robot_direct_message(Text(content="x"), user_ids="user1")


def test_rejected_token_is_refreshed_once(dingtalk_conn: DingTalkEmulator) -> None:
    h = hook()
    h.send_robot_group_message(Text(content="1"), open_conversation_id="cid1")
    dingtalk_conn.expire_tokens()
    h.send_robot_group_message(Text(content="2"), open_conversation_id="cid1")
    assert dingtalk_conn.calls("/v1.0/oauth2/accessToken") == 2
    assert [r.status for r in dingtalk_conn.requests(GROUP)] == [200, 400, 200]
    assert len(dingtalk_conn.inbox("app_robot_group")) == 2


def test_filtered_users_are_reported_like_invalid_and_flow_controlled_ones(
    dingtalk_conn: DingTalkEmulator, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    logs = Logs(caplog, capfd)
    # DingTalk's batchSend answer can name users it filtered out (filteredStaffIdList, in DingTalk's
    # SDK since 2.2.65); the emulator answers such a body through fault injection.
    answer = {
        "processQueryKey": "pqk-1",
        "invalidStaffIdList": ["ghost"],
        "flowControlledStaffIdList": ["busy"],
        "filteredStaffIdList": ["quiet"],
    }
    dingtalk_conn.inject(OTO, status=200, body=answer)
    [result] = hook().send_robot_direct_message(Text(content="hi"), user_ids=["ghost", "busy", "quiet", "ok"])
    assert result.filtered_user_ids == ("quiet",)
    assert "could not reach 3 user(s): ghost, busy, quiet" in logs.text
