"""The message types: one model that every DingTalk dialect is rendered from.

Objects are frozen and hold tuples, so they are hashable and safe to share between tasks. They check
only their own shape; limits depend on where a message goes, so the renderers check those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Self

from airflow_provider_dingtalk.exceptions import DingTalkValidationError


def _freeze(obj: object, name: str) -> None:
    """Store the sequence attribute ``name`` as a tuple (frozen dataclasses need object.__setattr__)."""
    value = getattr(obj, name)
    if isinstance(value, str | bytes):
        # tuple("138...") would silently become one mention per digit.
        raise DingTalkValidationError(
            f"{type(obj).__name__}.{name}", "must be a list of items, not a single string"
        )
    object.__setattr__(obj, name, tuple(value))


@dataclass(frozen=True, kw_only=True)
class Message:
    """Base class of every message; render it with ``to_work_notification``, ``to_custom_robot`` or
    ``to_app_robot``."""


@dataclass(frozen=True, kw_only=True)
class Text(Message):
    """Plain text.

    :param content: the text.
    """

    content: str


@dataclass(frozen=True, kw_only=True)
class Markdown(Message):
    """Markdown (DingTalk's subset).

    :param title: shown in the conversation list and notification banner.
    :param text: the markdown body.
    """

    title: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Link(Message):
    """A link card.

    :param title: card title.
    :param text: card text.
    :param message_url: where a click goes (http(s) or dingtalk://).
    :param pic_url: picture URL; work notifications also accept an uploaded media id (``@lA…``).
        Optional for the custom robot only: work notifications and the app robot need it.
    """

    title: str
    text: str
    message_url: str
    pic_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class _Media(Message):
    """A message whose content is an uploaded file: either its ``media_id`` or a local ``path`` that the
    operator uploads first (and then calls :meth:`with_media_id`)."""

    media_id: str | None = None
    path: str | PathLike[str] | None = None

    def with_media_id(self, media_id: str) -> Self:
        """Return a copy that refers to the uploaded file ``media_id`` instead of the local path.

        :param media_id: the ``media_id`` returned by DingTalk's media upload.
        """
        return dataclasses.replace(self, media_id=media_id, path=None)


@dataclass(frozen=True, kw_only=True)
class Image(_Media):
    """An image.

    :param media_id: uploaded image (work notifications; also accepted by the app robot).
    :param path: local image to upload first.
    :param pic_url: public image URL (app robot).
    """

    pic_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class Voice(_Media):
    """A voice message (AMR).

    :param media_id: uploaded voice file.
    :param path: local voice file to upload first.
    :param duration: length in whole seconds, 1 to 59 (DingTalk: "小于60").
    """

    duration: int


@dataclass(frozen=True, kw_only=True)
class File(_Media):
    """A file.

    :param media_id: uploaded file.
    :param path: local file to upload first.
    """


@dataclass(frozen=True, kw_only=True)
class Button:
    """One button of an :class:`ActionCard`.

    :param title: button text (at most 20 characters).
    :param url: where the button goes (at most 500 characters).
    """

    title: str
    url: str


@dataclass(frozen=True, kw_only=True)
class ActionCard(Message):
    """A card with either one "read more" button or a list of buttons.

    :param title: card title (at most 64 characters).
    :param text: markdown body.
    :param single_title: text of the single button; give it with ``single_url`` and no ``buttons``.
    :param single_url: where the single button goes.
    :param buttons: the buttons, when not using a single button.
    :param btn_orientation: ``"0"`` vertical, ``"1"`` horizontal.
    :param hide_avatar: hide the robot's avatar (custom robot only).
    """

    title: str
    text: str
    single_title: str | None = None
    single_url: str | None = None
    buttons: Sequence[Button] = ()
    btn_orientation: str = "0"
    hide_avatar: bool = False

    def __post_init__(self) -> None:
        _freeze(self, "buttons")


@dataclass(frozen=True, kw_only=True)
class FormRow:
    """One ``key: value`` row of an :class:`OA` message body.

    :param key: the label, e.g. ``"Owner:"``.
    :param value: the value.
    """

    key: str
    value: str


@dataclass(frozen=True, kw_only=True)
class Rich:
    """The large number of an :class:`OA` message body, e.g. an amount.

    :param num: the number, as it should be shown.
    :param unit: its unit.
    """

    num: str | int | float
    unit: str | None = None


@dataclass(frozen=True, kw_only=True)
class OA(Message):
    """An OA card (work notifications only), optionally with a status bar that can be updated later.

    :param message_url: where a click goes on mobile.
    :param head_text: header text (at most 10 characters; DingTalk shows the app name instead).
    :param head_bgcolor: header colour as 8 hex digits ARGB, no ``0x``.
    :param pc_message_url: where a click goes on desktop.
    :param title: body title.
    :param form: body rows, at most 6.
    :param rich: the large number shown in the body.
    :param content: body text (DingTalk shows 3 lines).
    :param image: media id of an uploaded image.
    :param file_count: number of attachments to show (display only).
    :param author: author line.
    :param status_value: status bar text, e.g. ``"Running"``.
    :param status_bg: status bar colour, ``0x`` and 8 hex digits ARGB.
    """

    message_url: str
    head_text: str
    head_bgcolor: str = "FFBBBBBB"
    pc_message_url: str | None = None
    title: str | None = None
    form: Sequence[FormRow] = ()
    rich: Rich | None = None
    content: str | None = None
    image: str | None = None
    file_count: int | None = None
    author: str | None = None
    status_value: str | None = None
    status_bg: str | None = None

    def __post_init__(self) -> None:
        _freeze(self, "form")


@dataclass(frozen=True, kw_only=True)
class FeedLink:
    """One entry of a :class:`FeedCard`.

    :param title: entry title.
    :param message_url: where a click goes.
    :param pic_url: picture URL.
    """

    title: str
    message_url: str
    pic_url: str


@dataclass(frozen=True, kw_only=True)
class FeedCard(Message):
    """A list of links with pictures (custom robot webhook only).

    :param links: the entries, at least one.
    """

    links: Sequence[FeedLink]

    def __post_init__(self) -> None:
        _freeze(self, "links")


@dataclass(frozen=True, kw_only=True)
class Mentions:
    """Who a custom-robot text or markdown message @-mentions.

    :param mobiles: mobile numbers of the people to mention.
    :param user_ids: DingTalk user ids of the people to mention.
    :param at_all: mention everyone in the group.
    """

    mobiles: Sequence[str] = ()
    user_ids: Sequence[str] = ()
    at_all: bool = False

    def __post_init__(self) -> None:
        _freeze(self, "mobiles")
        _freeze(self, "user_ids")
