"""Interactive cards (互动卡片): create and deliver, update, and register the HTTP callback route.

Built on :class:`~airflow_provider_dingtalk.hooks.base.DingTalkBaseHook` ``call_api``. Interactive
cards are the only DingTalk messages whose buttons call the app back ("回传请求"); the others open
URLs. DingTalk's pages: "Create and deliver cards" (``POST /v1.0/card/instances/createAndDeliver``),
"Update card" (``PUT /v1.0/card/instances``), "Register card callback address"
(``POST /v1.0/card/callbacks/register``) and "Card callback" (the click payload and its reply), under
open.dingtalk.com/document/orgapp/. The app needs the permission ``Card.Instance.Write``, and its
robot enabled for one-to-one delivery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook
from airflow_provider_dingtalk.messages.hitl_card import OUT_TRACK_ID_MAX_CHARS, check_params

CREATE_AND_DELIVER_PATH = "/v1.0/card/instances/createAndDeliver"
UPDATE_PATH = "/v1.0/card/instances"
REGISTER_CALLBACK_PATH = "/v1.0/card/callbacks/register"
CallbackType = Literal["STREAM", "HTTP"]


@dataclass(frozen=True, kw_only=True)
class CardDelivery:
    """Where one ``createAndDeliver`` put the card: one entry per space (``IM_ROBOT.<user>``, a group)."""

    space_type: str
    space_id: str
    success: bool
    error: str = ""


class DingTalkInteractiveCardHook(DingTalkBaseHook):
    """Interactive cards through the v1.0 API.

    :param dingtalk_conn_id: a connection of type ``dingtalk`` (default ``dingtalk_default``).
    :param retry_policy: override the default retry policy (attempts, backoff, total time).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._api_secrets: list[str] = []

    def create_and_deliver_card(
        self,
        *,
        card_template_id: str,
        out_track_id: str,
        card_param_map: Mapping[str, str],
        user_ids: Sequence[str] = (),
        open_conversation_id: str | None = None,
        callback_type: CallbackType = "STREAM",
        callback_route_key: str | None = None,
        robot_code: str | None = None,
        last_message: str = "",
    ) -> list[CardDelivery]:
        """Create one card and deliver it to users one-to-one (the app robot's chat) and/or a group.

        Every space shows the same card: an update (or a click's reply) changes it everywhere.

        :param card_template_id: the published template's id (``….schema``).
        :param out_track_id: our id of the card, unique (DingTalk answers ``param.cardAlreadyExist``).
        :param card_param_map: the template's variables, strings only.
        :param user_ids: DingTalk user ids, each gets the card in the app robot's one-to-one chat.
        :param open_conversation_id: a group chat (``cid…``) the app robot is in.
        :param callback_type: ``STREAM`` (clicks reach the app's Stream connection) or ``HTTP``
            (clicks are posted to the URL registered for ``callback_route_key``).
        :param robot_code: the robot for group delivery; defaults to the connection's AppKey.
        :param last_message: the preview in the conversation list.
        :return: one entry per space, as DingTalk reported it.
        """
        users = _user_ids(user_ids)
        group = (open_conversation_id or "").strip()
        if not users and not group:
            raise DingTalkValidationError("user_ids", "is empty and no open_conversation_id is given")
        if not str(card_template_id or "").strip():
            raise DingTalkValidationError("card_template_id", "is empty; give the published template's id")
        if not out_track_id or len(out_track_id) > OUT_TRACK_ID_MAX_CHARS:
            raise DingTalkValidationError(
                "out_track_id", "must be 1 to 100 characters", size=len(out_track_id), limit=100
            )
        if callback_type not in ("STREAM", "HTTP"):
            raise DingTalkValidationError("callback_type", f"must be STREAM or HTTP, not {callback_type!r}")
        if callback_type == "HTTP" and not callback_route_key:
            raise DingTalkValidationError(
                "callback_route_key", "is needed for HTTP callbacks (see register_card_callback)"
            )
        check_params(card_param_map)
        spaces = [f"dtv1.card//IM_ROBOT.{u}" for u in users] + (
            [f"dtv1.card//IM_GROUP.{group}"] if group else []
        )
        payload: dict[str, Any] = {
            "cardTemplateId": card_template_id.strip(),
            "outTrackId": out_track_id,
            "callbackType": callback_type,
            "cardData": {"cardParamMap": dict(card_param_map)},
            "openSpaceId": ";".join(spaces),
            "userIdType": 1,
        }
        if callback_type == "HTTP":
            payload["callbackRouteKey"] = callback_route_key
        preview = {"lastMessageI18n": {"ZH_CN": last_message, "EN_US": last_message}} if last_message else {}
        if users:
            payload["imRobotOpenSpaceModel"] = {"supportForward": False, **preview}
            payload["imRobotOpenDeliverModel"] = {"spaceType": "IM_ROBOT"}
        if group:
            payload["imGroupOpenSpaceModel"] = {"supportForward": False, **preview}
            payload["imGroupOpenDeliverModel"] = {"robotCode": robot_code or self.app.app_key}
        answer = self.call_api("POST", CREATE_AND_DELIVER_PATH, json=payload)
        result = answer.get("result") if isinstance(answer.get("result"), dict) else {}
        deliveries = [
            CardDelivery(
                space_type=str(item.get("spaceType") or ""),
                space_id=str(item.get("spaceId") or ""),
                success=bool(item.get("success")),
                error=str(item.get("errorMsg") or ""),
            )
            for item in (result or {}).get("deliverResults") or []
            if isinstance(item, dict)
        ]
        failed = [d for d in deliveries if not d.success]
        if failed:
            self.log.warning(
                "Card %s not delivered to %s",
                out_track_id,
                ", ".join(f"{d.space_id} ({d.error})" for d in failed),
            )
        self.log.info("Card %s delivered to %d space(s).", out_track_id, len(deliveries) - len(failed))
        return deliveries

    def update_card(
        self,
        *,
        out_track_id: str,
        card_param_map: Mapping[str, str] | None = None,
        private_param_maps: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Change some variables of a card for everyone, and/or some users' private variables.

        Only the keys given change (``updateCardDataByKey``), so a stale update cannot undo a newer one
        on another key.
        """
        if not card_param_map and not private_param_maps:
            raise DingTalkValidationError("card_param_map", "is empty and no private_param_maps are given")
        payload: dict[str, Any] = {"outTrackId": out_track_id, "cardUpdateOptions": {}}
        if card_param_map:
            check_params(card_param_map)
            payload["cardData"] = {"cardParamMap": dict(card_param_map)}
            payload["cardUpdateOptions"]["updateCardDataByKey"] = True
        if private_param_maps:
            for user, params in private_param_maps.items():
                check_params(params, field=f"private_param_maps[{user!r}]")
            payload["privateData"] = {u: {"cardParamMap": dict(p)} for u, p in private_param_maps.items()}
            payload["cardUpdateOptions"]["updatePrivateDataByKey"] = True
        self.call_api("PUT", UPDATE_PATH, json=payload)

    def register_card_callback(
        self, *, callback_route_key: str, callback_url: str, api_secret: str, force_update: bool = False
    ) -> None:
        """Tell DingTalk where to post clicks of cards created with ``callback_type="HTTP"``.

        :param callback_route_key: our name for the route; cards name it in ``callback_route_key``.
        :param callback_url: the public HTTPS URL of the card callback
            (``<api server>/dingtalk/cards/callback``).
        :param api_secret: DingTalk signs each click with it (``x-ddpaas-signature``); keep it in the
            connection's ``card_callback_api_secret``, where the receiver reads it.
        :param force_update: replace an existing route of that key (else ``param.callbackRouteKeyExist``).
        """
        for name, value in (("callback_route_key", callback_route_key), ("callback_url", callback_url)):
            if not str(value or "").strip():
                raise DingTalkValidationError(name, "is empty")
        if not callback_url.lower().startswith(("https://", "http://")):
            raise DingTalkValidationError("callback_url", "must be an http(s) URL")
        if not api_secret:
            raise DingTalkValidationError("api_secret", "is empty; clicks must be signed")
        from airflow_provider_dingtalk._redact import mask_secret

        mask_secret(api_secret)
        self._api_secrets.append(api_secret)
        payload = {
            "callbackRouteKey": callback_route_key,
            "callbackUrl": callback_url,
            "apiSecret": api_secret,
            "forceUpdate": force_update,
        }
        self.call_api("POST", REGISTER_CALLBACK_PATH, json=payload)
        self.log.info("Card callback route %s registered for %s", callback_route_key, callback_url)

    def _secrets(self) -> list[str]:
        # The api_secret travels in register's body: keep it out of any error this hook raises.
        return [*super()._secrets(), *self._api_secrets]


def _user_ids(user_ids: Sequence[str]) -> list[str]:
    if isinstance(user_ids, str):
        raise DingTalkValidationError("user_ids", "must be a list of user ids, not a single string")
    users: list[str] = []
    for i, user in enumerate(user_ids):
        if not isinstance(user, str) or not user.strip():
            raise DingTalkValidationError(f"user_ids[{i}]", "must be a non-empty user id")
        if "." in user or ";" in user:
            raise DingTalkValidationError(
                f"user_ids[{i}]", "must not contain '.' or ';' (openSpaceId syntax)"
            )
        if user.strip() not in users:
            users.append(user.strip())
    return users
