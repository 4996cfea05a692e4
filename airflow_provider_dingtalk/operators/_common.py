"""What the operators share: the message shorthand, raw dicts, and templating inside message objects.

Imported by DAG files at parse time through the operators: nothing heavy here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages import Markdown, Message, Text
from airflow_provider_dingtalk.messages._checks import id_list

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context


def check_shorthand(message: object, text: str | None, markdown: str | None, title: str | None) -> None:
    """Exactly one of ``message``, ``text`` or ``markdown`` (+ ``title``): checked when the DAG is parsed."""
    given = [n for n, v in (("message", message), ("text", text), ("markdown", markdown)) if v is not None]
    if len(given) != 1:
        raise DingTalkValidationError(
            "message", f"give exactly one of message, text or markdown (got {given or 'none'})"
        )
    if (markdown is None) != (title is None):
        raise DingTalkValidationError("title", "goes with markdown= and only with it")


def build_message(
    message: Message | Mapping[str, Any] | str | None,
    text: str | None,
    markdown: str | None,
    title: str | None,
) -> Message | Mapping[str, Any]:
    """The message to send, after templates were rendered: a message object, or a raw dict that the
    hook reads with its dialect's parser (a template that rendered a dict to JSON text is read back)."""
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            raise DingTalkValidationError("message", "a string message must be a JSON object") from None
        if not isinstance(message, Mapping):
            raise DingTalkValidationError("message", "a string message must be a JSON object")
    if message is not None:
        return message
    if text is not None:
        return Text(content=text)
    return Markdown(title=str(title), text=str(markdown))


def check_robot_target(open_conversation_id: str | None, user_ids: Sequence[str] | str | None) -> None:
    """An app-robot message goes to one group or to users, never both or neither."""
    if (open_conversation_id is None) == (user_ids is None):
        raise DingTalkValidationError(
            "open_conversation_id", "give exactly one of open_conversation_id or user_ids"
        )


def as_list(value: Sequence[str] | str | None, field: str) -> list[str]:
    """Ids from a list or the text a template renders (``"u1,u2"``, JSON), checked as
    :func:`~airflow_provider_dingtalk.messages._checks.id_list` says; blank items dropped."""
    return [str(i) for i in id_list(value, field) if str(i).strip()]


class RenderMessageFields:
    """Render Jinja inside message objects (frozen dataclasses, which Airflow would leave as they are)."""

    def render_template(
        self,
        content: Any,
        context: Context,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        if dataclasses.is_dataclass(content) and not isinstance(content, type):
            changes = {
                f.name: self.render_template(getattr(content, f.name), context, jinja_env, seen_oids)
                for f in dataclasses.fields(content)
            }
            return dataclasses.replace(content, **changes)
        return super().render_template(content, context, jinja_env, seen_oids)  # type: ignore[misc]
