"""Interactive cards through DingTalkInteractiveCardHook against the emulator, and the emulator's clicks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Request

from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkValidationError
from airflow_provider_dingtalk.hooks.interactive_card import DingTalkInteractiveCardHook
from airflow_provider_dingtalk.retry import RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import DEMO_TEMPLATE_ID

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=10)
CREATE = "/v1.0/card/instances/createAndDeliver"


def hook() -> DingTalkInteractiveCardHook:
    return DingTalkInteractiveCardHook(retry_policy=FAST)


def send(**kwargs: Any) -> Any:
    args: dict[str, Any] = {
        "card_template_id": DEMO_TEMPLATE_ID,
        "out_track_id": "track-1",
        "card_param_map": {"subject": "Deploy?", "status": "pending"},
        "user_ids": ["user1", "user2"],
    }
    return hook().create_and_deliver_card(**{**args, **kwargs})


def test_one_card_reaches_each_user_and_the_group(dingtalk_conn: DingTalkEmulator) -> None:
    deliveries = send(open_conversation_id="cid42", last_message="Approval needed")
    assert [(d.space_type, d.space_id, d.success) for d in deliveries] == [
        ("IM_ROBOT", "user1", True),
        ("IM_ROBOT", "user2", True),
        ("IM_GROUP", "cid42", True),
    ]
    assert sorted(d.target for d in dingtalk_conn.inbox("interactive_card")) == ["cid42", "user1", "user2"]
    (request,) = dingtalk_conn.requests(CREATE)
    assert request.body["openSpaceId"] == (
        "dtv1.card//IM_ROBOT.user1;dtv1.card//IM_ROBOT.user2;dtv1.card//IM_GROUP.cid42"
    )
    assert request.body["callbackType"] == "STREAM" and request.body["userIdType"] == 1
    assert request.body["imGroupOpenDeliverModel"] == {"robotCode": dingtalk_conn.app.app_key}
    (card,) = dingtalk_conn.cards()
    assert dingtalk_conn.card("track-1", "user2") == {"subject": "Deploy?", "status": "pending"}
    assert card.template_id == DEMO_TEMPLATE_ID


def test_dingtalks_errors_carry_its_code(dingtalk_conn: DingTalkEmulator) -> None:
    with pytest.raises(DingTalkAPIError) as err:
        send(card_template_id="nope.schema")
    assert (err.value.code, err.value.http_status) == ("param.templateNotExist", 400)
    dingtalk_conn.publish_card_template("draft.schema", published=False)
    with pytest.raises(DingTalkAPIError) as err:
        send(card_template_id="draft.schema")
    assert err.value.code == "param.templateUnpublished"
    with pytest.raises(DingTalkAPIError) as err:
        send(user_ids=["ghost"])
    assert err.value.code == "param.userIdNotExist"
    send()
    with pytest.raises(DingTalkAPIError) as err:
        send()
    assert err.value.code == "param.cardAlreadyExist"
    with pytest.raises(DingTalkAPIError) as err:
        send(out_track_id="track-2", callback_type="HTTP", callback_route_key="unregistered")
    assert err.value.code == "param.callbackRouteKeyNotExist"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"card_param_map": {"count": 3}}, "card_param_map['count']"),
        ({"card_param_map": {"body": "x" * 1025}}, "card_param_map['body']"),
        ({"card_param_map": {"k" * 101: "v"}}, "card_param_map["),
        ({"user_ids": [], "open_conversation_id": None}, "user_ids"),
        ({"user_ids": "user1"}, "user_ids"),
        ({"out_track_id": "x" * 101}, "out_track_id"),
        ({"callback_type": "HTTP"}, "callback_route_key"),
        ({"card_template_id": " "}, "card_template_id"),
    ],
)
def test_bad_input_is_refused_before_sending(
    dingtalk_conn: DingTalkEmulator, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(DingTalkValidationError) as err:
        send(**change)
    assert err.value.field.startswith(field)
    assert dingtalk_conn.requests(CREATE) == []


def test_update_changes_only_the_keys_given(dingtalk_conn: DingTalkEmulator) -> None:
    send()
    hook().update_card(
        out_track_id="track-1",
        card_param_map={"status": "answered"},
        private_param_maps={"user2": {"notice": "thanks"}},
    )
    assert dingtalk_conn.card("track-1") == {"subject": "Deploy?", "status": "answered"}
    assert dingtalk_conn.card("track-1", "user2")["notice"] == "thanks"
    assert "notice" not in dingtalk_conn.card("track-1", "user1")


class _Receiver:
    """A minimal card callback endpoint: checks DingTalk's signature and replies with a card update."""

    def __init__(self, api_secret: str) -> None:
        from fastapi import FastAPI

        self.got: list[tuple[dict[str, str], dict[str, Any]]] = []
        app = FastAPI()

        @app.post("/cb")
        async def callback(request: Request) -> dict[str, Any]:
            stamp = request.headers["x-ddpaas-signature-timestamp"]
            want = base64.b64encode(hmac.new(api_secret.encode(), stamp.encode(), hashlib.sha256).digest())
            self.got.append((dict(request.headers), await request.json()))
            if request.headers["x-ddpaas-signature"] != want.decode():
                return {}
            return {
                "cardData": {"cardParamMap": {"status": "approved"}},
                "userPrivateData": {"cardParamMap": {"notice": "you approved"}},
                "cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": True},
            }

        self.app = app


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, str]]:
    from airflow_provider_dingtalk._serve import ThreadedServer

    receiver = _Receiver("card-secret-0123")
    with ThreadedServer(receiver.app, host="127.0.0.1", port=0, name="card-receiver") as server:
        yield receiver, server.url + "/cb"


def test_a_click_is_posted_signed_and_its_reply_updates_the_card(
    dingtalk_conn: DingTalkEmulator, receiver: tuple[_Receiver, str]
) -> None:
    endpoint, url = receiver
    hook().register_card_callback(
        callback_route_key="airflow", callback_url=url, api_secret="card-secret-0123"
    )
    send(callback_type="HTTP", callback_route_key="airflow")
    result = dingtalk_conn.click("track-1", "user2", "option_0", params={"option_index": "0"})
    assert result.status == 200 and result.transport == "HTTP" and result.seconds < 2
    ((headers, body),) = endpoint.got
    assert headers["x-ddpaas-signature-timestamp"].isdigit()
    assert body["type"] == "actionCallback" and body["outTrackId"] == "track-1"
    assert (body["userId"], body["spaceType"], body["spaceId"]) == ("user2", "IM_ROBOT", "user2")
    assert (
        body["content"] == '{"cardPrivateData": {"actionIds": ["option_0"], "params": {"option_index": "0"}}}'
    )
    assert dingtalk_conn.card("track-1") == {"subject": "Deploy?", "status": "approved"}
    assert dingtalk_conn.card("track-1", "user2")["notice"] == "you approved"
    assert "notice" not in dingtalk_conn.card("track-1", "user1")
    # The api secret never reaches the emulator's request log.
    assert "card-secret-0123" not in repr(dingtalk_conn.requests())


def test_register_twice_needs_force_update(dingtalk_conn: DingTalkEmulator) -> None:
    hook().register_card_callback(
        callback_route_key="r", callback_url="https://a.example/cb", api_secret="s1"
    )
    with pytest.raises(DingTalkAPIError) as err:
        hook().register_card_callback(
            callback_route_key="r", callback_url="https://b.example/cb", api_secret="s2"
        )
    assert err.value.code == "param.callbackRouteKeyExist"
    hook().register_card_callback(
        callback_route_key="r", callback_url="https://b.example/cb", api_secret="s2", force_update=True
    )


def test_a_stream_card_without_a_stream_connection_is_a_clear_error(dingtalk_conn: DingTalkEmulator) -> None:
    send()
    with pytest.raises(LookupError, match="holds no Stream connection"):
        dingtalk_conn.click("track-1", "user1", "option_0")
    with pytest.raises(LookupError, match="has not got card"):
        dingtalk_conn.click("track-1", "user9", "option_0")
