"""The message model and its three renderers: limits, validation, mentions, unsupported types.

That each rendering has the shape DingTalk takes is proven by sending it through the strict emulator
(``tests/emulator/test_strict_bodies.py``), not by comparing it with JSON written here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_dingtalk._json import dumps, utf8_len
from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages import (
    CUSTOM_ROBOT_MAX_BYTES,
    OA,
    ActionCard,
    Button,
    FeedCard,
    FeedLink,
    File,
    FormRow,
    Image,
    Link,
    Markdown,
    Mentions,
    Message,
    Text,
    Voice,
    fit_text,
    parse_work_notification,
    to_app_robot,
    to_custom_robot,
    to_work_notification,
)

URL = "https://example.com/dag"


def buttons(n: int) -> list[Button]:
    return [Button(title=f"B{i}", url=f"https://example.com/{i}") for i in range(1, n + 1)]


# ---------------------------------------------------------------- work notifications (snake_case)


@pytest.mark.parametrize("media_cls", [Image, File])
def test_media_path_must_be_uploaded_first(media_cls: type[Image] | type[File], tmp_path: Any) -> None:
    local = media_cls(path=tmp_path / "x.bin")
    field = f"msg.{media_cls.__name__.lower()}.media_id"
    with pytest.raises(DingTalkValidationError, match="uploaded first") as err:
        to_work_notification(local)
    assert err.value.field == field
    uploaded = local.with_media_id("@m")
    assert type(uploaded) is media_cls
    assert (uploaded.media_id, uploaded.path) == ("@m", None)
    assert local.media_id is None  # the original is untouched (frozen)
    assert to_work_notification(uploaded)[media_cls.__name__.lower()] == {"media_id": "@m"}


def test_voice_with_media_id_keeps_duration() -> None:
    voice = Voice(path="/tmp/a.amr", duration=7).with_media_id("@v")
    assert voice == Voice(media_id="@v", duration=7)


def test_media_needs_media_id_or_path_not_both() -> None:
    with pytest.raises(DingTalkValidationError, match="not both"):
        to_work_notification(Image(media_id="@m", path="/tmp/x.png"))
    with pytest.raises(DingTalkValidationError, match="is required") as err:
        to_work_notification(Image(pic_url=URL))  # pic_url is for robots only
    assert err.value.field == "msg.image.media_id"


# ---------------------------------------------------------------- custom robot webhook (camelCase)


def test_robot_webhook_msg_uuid() -> None:
    assert to_custom_robot(Text(content="hi"), msg_uuid="run-1")["msgUuid"] == "run-1"


@pytest.mark.parametrize("msg_cls", [Text, Markdown])
def test_mentions_appended_only_when_missing(msg_cls: type[Text] | type[Markdown]) -> None:
    mentions = Mentions(mobiles=["13800001111", "13900002222"], user_ids=["user", "ops"], at_all=True)
    text = "deploy failed, @13800001111 please look; cc @user2 and @ops"
    message = Text(content=text) if msg_cls is Text else Markdown(title="T", text=text)
    body = to_custom_robot(message, mentions=mentions)
    key = "text" if msg_cls is Text else "markdown"
    field = "content" if msg_cls is Text else "text"
    # @user2 in the text is not @user; @ops and @13800001111 are present; at_all adds no text.
    assert body[key][field] == text + "\n\n@13900002222 @user"
    assert body["at"] == {
        "atMobiles": ["13800001111", "13900002222"],
        "atUserIds": ["user", "ops"],
        "isAtAll": True,
    }


def test_mentions_all_present_leaves_text_alone() -> None:
    body = to_custom_robot(
        Text(content="@13800001111 hi @u1"), mentions=Mentions(mobiles=["13800001111"], user_ids=["u1"])
    )
    assert body["text"]["content"] == "@13800001111 hi @u1"


def test_mentions_only_on_text_and_markdown() -> None:
    link = Link(title="T", text="x", message_url=URL)
    with pytest.raises(DingTalkValidationError) as err:
        to_custom_robot(link, mentions=Mentions(user_ids=["u1"]))
    assert err.value.field == "at"
    assert "at" not in to_custom_robot(link, mentions=Mentions())  # nothing to mention: fine


def test_mentions_reject_a_single_string() -> None:
    with pytest.raises(DingTalkValidationError, match="not a single string") as err:
        Mentions(mobiles="13800001111")  # a str is a Sequence[str] to the type checker
    assert err.value.field == "Mentions.mobiles"


def test_mentions_count_toward_the_body_limit() -> None:
    text = "x" * (CUSTOM_ROBOT_MAX_BYTES - utf8_len(dumps(to_custom_robot(Text(content="x")))) + 1)
    assert to_custom_robot(Text(content=text))  # exactly at the limit
    with pytest.raises(DingTalkValidationError) as err:
        to_custom_robot(Text(content=text), mentions=Mentions(user_ids=["u1"]))
    assert (err.value.field, err.value.limit) == ("body", CUSTOM_ROBOT_MAX_BYTES)


# ---------------------------------------------------------------- app robot (msgKey, msgParam)


def test_app_robot_button_counts() -> None:
    with pytest.raises(DingTalkValidationError) as err:
        to_app_robot(ActionCard(title="T", text="x", buttons=buttons(6)))
    assert (err.value.field, err.value.size, err.value.limit) == ("buttons", 6, 5)
    with pytest.raises(DingTalkValidationError, match="exactly 2 buttons horizontally") as err:
        to_app_robot(ActionCard(title="T", text="x", buttons=buttons(3), btn_orientation="1"))
    assert err.value.field == "btn_orientation"


def test_app_robot_image_prefers_the_public_url_to_the_media_id() -> None:
    key, param = to_app_robot(Image(media_id="@img", pic_url="https://example.com/p.png"))
    assert (key, json.loads(param)) == ("sampleImageMsg", {"photoURL": "https://example.com/p.png"})


def test_app_robot_image_path_must_be_uploaded_first() -> None:
    with pytest.raises(DingTalkValidationError, match="uploaded first") as err:
        to_app_robot(Image(path="/tmp/x.png"))
    assert err.value.field == "msgParam.photoURL"


# ---------------------------------------------------------------- unsupported types per dialect


def test_raw_dict_points_to_parse_work_notification() -> None:
    with pytest.raises(DingTalkValidationError, match="parse_work_notification"):
        to_work_notification({"msgtype": "text", "text": {"content": "hi"}})  # type: ignore[arg-type]


_FEED = FeedCard(links=[FeedLink(title="F", message_url=URL, pic_url=URL)])
_OA = OA(message_url=URL, head_text="h")


@pytest.mark.parametrize(
    ("render", "message", "field"),
    [
        (to_work_notification, _FEED, "msg.msgtype"),
        (to_custom_robot, Image(pic_url=URL), "msgtype"),
        (to_custom_robot, Voice(media_id="@v", duration=3), "msgtype"),
        (to_custom_robot, File(media_id="@f"), "msgtype"),
        (to_custom_robot, _OA, "msgtype"),
        (to_app_robot, Voice(media_id="@v", duration=3), "msgKey"),
        (to_app_robot, File(media_id="@f"), "msgKey"),
        (to_app_robot, _OA, "msgKey"),
        (to_app_robot, _FEED, "msgKey"),
        (to_work_notification, {"msgtype": "text"}, "msg.msgtype"),
    ],
    ids=lambda v: getattr(v, "__name__", type(v).__name__),
)
def test_unsupported_types(render: Callable[[Any], Any], message: Any, field: str) -> None:
    with pytest.raises(DingTalkValidationError, match="cannot send") as err:
        render(message)
    assert err.value.field == field


# ---------------------------------------------------------------- limits: at the limit passes, +1 fails


def _card(**kw: Any) -> ActionCard:
    base: dict[str, Any] = {"title": "T", "text": "x", "single_title": "S", "single_url": URL}
    base.update(kw)
    return ActionCard(**base)


def _url(n: int) -> str:
    return URL + "/" + "a" * (n - len(URL) - 1)


def _btn_card(**kw: Any) -> ActionCard:
    return ActionCard(title="T", text="x", buttons=[Button(**{"title": "B", "url": URL, **kw})])


# (renderer, build(size) -> message, limit, field)
_LIMITS: list[tuple[Callable[[Any], Any], Callable[[int], Message], int, str]] = [
    (to_work_notification, lambda n: _card(title="题" * n), 64, "msg.action_card.title"),
    (to_work_notification, lambda n: _card(single_title="查" * n), 20, "msg.action_card.single_title"),
    (to_work_notification, lambda n: _card(single_url=_url(n)), 500, "msg.action_card.single_url"),
    (to_work_notification, lambda n: _btn_card(title="b" * n), 20, "msg.action_card.btn_json_list[0].title"),
    (
        to_work_notification,
        lambda n: _btn_card(url=_url(n)),
        500,
        "msg.action_card.btn_json_list[0].action_url",
    ),
    (to_work_notification, lambda n: OA(message_url=URL, head_text="头" * n), 10, "msg.oa.head.text"),
    (
        to_work_notification,
        lambda n: OA(message_url=URL, head_text="h", form=[FormRow(key="k", value="v")] * n),
        6,
        "msg.oa.body.form",
    ),
    (to_work_notification, lambda n: Voice(media_id="@v", duration=n), 59, "msg.voice.duration"),
    (to_custom_robot, lambda n: _card(title="t" * n), 64, "actionCard.title"),
    (to_custom_robot, lambda n: _card(single_title="s" * n), 20, "actionCard.singleTitle"),
    (to_custom_robot, lambda n: _card(single_url=_url(n)), 500, "actionCard.singleURL"),
    (to_custom_robot, lambda n: _btn_card(title="b" * n), 20, "actionCard.btns[0].title"),
    (to_custom_robot, lambda n: _btn_card(url=_url(n)), 500, "actionCard.btns[0].actionURL"),
    (to_app_robot, lambda n: _card(title="t" * n), 64, "msgParam.title"),
    (to_app_robot, lambda n: _card(single_title="s" * n), 20, "msgParam.singleTitle"),
    (to_app_robot, lambda n: _card(single_url=_url(n)), 500, "msgParam.singleURL"),
]


@pytest.mark.parametrize(("render", "build", "limit", "field"), _LIMITS, ids=[case[3] for case in _LIMITS])
def test_field_limits(
    render: Callable[[Any], Any], build: Callable[[int], Message], limit: int, field: str
) -> None:
    render(build(limit))
    with pytest.raises(DingTalkValidationError) as err:
        render(build(limit + 1))
    assert (err.value.field, err.value.size, err.value.limit) == (field, limit + 1, limit)


def test_voice_duration_lower_bound() -> None:
    to_work_notification(Voice(media_id="@v", duration=1))
    with pytest.raises(DingTalkValidationError) as err:
        to_work_notification(Voice(media_id="@v", duration=0))
    assert err.value.field == "msg.voice.duration"


def _text_of_bytes(render: Callable[[Message], Any], total: int) -> Text:
    """A Text whose rendering is exactly ``total`` bytes, mostly 3-byte characters (limits are bytes)."""
    overhead = _size(render, Text(content="x")) - 1
    budget = total - overhead
    return Text(content="中" * (budget // 3) + "x" * (budget % 3))


def _size(render: Callable[[Message], Any], message: Message) -> int:
    out = render(message)
    return utf8_len(out[1] if isinstance(out, tuple) else dumps(out))


@pytest.mark.parametrize(
    ("render", "limit", "field"),
    [
        # DingTalk's documented limits, written out rather than read from the module's constants.
        (to_work_notification, 2048, "msg"),
        (to_custom_robot, 20000, "body"),
        (to_app_robot, 15000, "msgParam"),
    ],
    ids=["work_notification", "custom_robot", "app_robot"],
)
def test_byte_limits(render: Callable[[Message], Any], limit: int, field: str) -> None:
    at_limit = _text_of_bytes(render, limit)
    assert _size(render, at_limit) == limit
    assert len(at_limit.content) < limit  # characters, not bytes, would have let it through
    over = Text(content=at_limit.content + "x")
    with pytest.raises(DingTalkValidationError) as err:
        render(over)
    assert (err.value.field, err.value.size, err.value.limit) == (field, limit + 1, limit)


# ---------------------------------------------------------------- other validation


@pytest.mark.parametrize(
    ("card", "field", "match"),
    [
        (_card(buttons=buttons(1)), "msg.action_card.btn_json_list", "not both"),
        (ActionCard(title="T", text="x", single_title="S"), "msg.action_card.single_url", "together"),
        (ActionCard(title="T", text="x", single_url=URL), "msg.action_card.single_title", "together"),
        (ActionCard(title="T", text="x"), "msg.action_card.btn_json_list", "at least one button"),
        (
            ActionCard(title="T", text="x", buttons=buttons(2), btn_orientation="2"),
            "msg.action_card.btn_orientation",
            "one of",
        ),
        (_card(title="   "), "msg.action_card.title", "empty"),
    ],
)
def test_action_card_rules(card: ActionCard, field: str, match: str) -> None:
    with pytest.raises(DingTalkValidationError, match=match) as err:
        to_work_notification(card)
    assert err.value.field == field


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x?t=SECRET", "example.com/x?t=SECRET", "https://", "https://exa mple.com/?t=SECRET"],
)
def test_urls_must_be_http_or_dingtalk(url: str) -> None:
    with pytest.raises(DingTalkValidationError) as err:
        to_custom_robot(Link(title="T", text="x", message_url=url))
    assert err.value.field == "link.messageUrl"
    assert "SECRET" not in str(err.value)  # URLs may carry tokens: never echoed


def test_dingtalk_scheme_url_accepted() -> None:
    link = "dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fexample.com"
    assert to_custom_robot(Link(title="T", text="x", message_url=link))["link"]["messageUrl"] == link


@pytest.mark.parametrize(
    ("oa", "field"),
    [
        (OA(message_url=URL, head_text="h", head_bgcolor="0xFFBBBBBB"), "msg.oa.head.bgcolor"),
        (OA(message_url=URL, head_text="h", head_bgcolor="FFBBBBB"), "msg.oa.head.bgcolor"),
        (OA(message_url=URL, head_text="h", head_bgcolor="FFBBBBBG"), "msg.oa.head.bgcolor"),
        (
            OA(message_url=URL, head_text="h", status_value="s", status_bg="FFF65E5E"),
            "msg.oa.status_bar.status_bg",
        ),
        (OA(message_url=URL, head_text="h", status_bg="0xFFF65E5E"), "msg.oa.status_bar.status_value"),
    ],
)
def test_oa_colours_and_status_bar(oa: OA, field: str) -> None:
    with pytest.raises(DingTalkValidationError) as err:
        to_work_notification(oa)
    assert err.value.field == field


def test_feed_card_needs_links() -> None:
    with pytest.raises(DingTalkValidationError) as err:
        to_custom_robot(FeedCard(links=[]))
    assert err.value.field == "feedCard.links"


def test_messages_are_frozen_hashable_and_store_tuples() -> None:
    card = ActionCard(title="T", text="x", buttons=buttons(2))
    assert isinstance(card.buttons, tuple)
    assert card == ActionCard(title="T", text="x", buttons=tuple(buttons(2)))
    assert len({card, ActionCard(title="T", text="x", buttons=tuple(buttons(2)))}) == 1
    assert isinstance(OA(message_url=URL, head_text="h", form=[FormRow(key="k", value="v")]).form, tuple)
    assert isinstance(Mentions(user_ids=["u"]).user_ids, tuple)
    with pytest.raises(AttributeError):
        card.title = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Text("positional")  # type: ignore[call-arg]


# ------------------------------------------------ raw work-notification dicts (more in messages/test_raw.py)


def test_parse_work_notification_byte_limit() -> None:
    overhead = utf8_len(dumps({"msgtype": "text", "text": {"content": ""}}))
    ok: dict[str, Any] = {"msgtype": "text", "text": {"content": "é" * ((2048 - overhead) // 2)}}
    assert utf8_len(dumps(ok)) == 2048
    assert parse_work_notification(ok) == Text(content=ok["text"]["content"])
    with pytest.raises(DingTalkValidationError) as err:
        parse_work_notification({"msgtype": "text", "text": {"content": ok["text"]["content"] + "x"}})
    assert (err.value.field, err.value.size, err.value.limit) == ("msg", 2049, 2048)


# ---------------------------------------------------------------- fit_text

MARKER = "\n…(truncated)"


@given(text=st.text(alphabet=st.characters(exclude_categories=["Cs"])), budget=st.integers(0, 200))
def test_fit_text_property(text: str, budget: int) -> None:
    out = fit_text(text, budget)
    assert utf8_len(out) <= budget
    if utf8_len(text) <= budget:
        assert out == text
        return
    head = out.removesuffix(MARKER) if utf8_len(MARKER) <= budget else out
    assert text.startswith(head)  # a whole-character prefix: nothing split, nothing altered
    room = budget - (utf8_len(MARKER) if utf8_len(MARKER) <= budget else 0)
    # ... and the longest such prefix: one more character would not fit.
    assert utf8_len(text[: len(head) + 1]) > room


def test_fit_text_multibyte_examples() -> None:
    assert fit_text("你好世界", 12) == "你好世界"
    assert fit_text("你好世界", 11) == "你好世"  # marker (15 bytes) does not fit: plain cut
    assert fit_text("😀" * 10, 4 + utf8_len(MARKER) + 3) == "😀" + MARKER
    with pytest.raises(DingTalkValidationError):
        fit_text("x", -1)
