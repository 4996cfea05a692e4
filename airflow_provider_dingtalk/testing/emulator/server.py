"""Run the emulator on loopback, in a background thread, for tests and demos."""

from __future__ import annotations

import json
import socket
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, overload

from airflow_provider_dingtalk.testing.emulator.state import (
    DEMO_APP,
    Delivery,
    EmulatedApp,
    EmulatorState,
    Fault,
    RequestRecord,
)

if TYPE_CHECKING:
    from airflow_provider_dingtalk.testing.emulator.endpoints.custom_robot import EmulatedRobot
    from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import Card, ClickResult
    from airflow_provider_dingtalk.testing.emulator.endpoints.media import Upload
    from airflow_provider_dingtalk.testing.emulator.endpoints.stream import StreamControls
    from airflow_provider_dingtalk.testing.emulator.endpoints.work_notification import Task


class DingTalkEmulator:
    """A local DingTalk that speaks real HTTP, for tests and for trying DAGs without DingTalk.

    Use it as a context manager (or ``start()``/``stop()``)::

        with DingTalkEmulator() as emulator:
            os.environ["AIRFLOW_CONN_DINGTALK_DEFAULT"] = emulator.connection_json()
            ...
            assert emulator.inbox("work_notification")[0].target == "user1"

    :param host: address to listen on; loopback by default.
    :param port: 0 picks a free port (see :attr:`url`).
    :param apps: the apps it knows; by default one demo app (:data:`DEMO_APP`).
    :param seed: makes every made-up value repeatable (tokens, robot tokens and secrets, the
        receiver's callback token and aes_key, request ids), so the connections it prints stay valid
        for an emulator started again with the same seed.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        apps: list[EmulatedApp] | None = None,
        seed: int | None = None,
    ) -> None:
        self.state = EmulatorState(apps or [DEMO_APP], seed=seed)
        self._host, self._port = host, port
        self._server: Any = None
        self.url = ""

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> DingTalkEmulator:
        from airflow_provider_dingtalk._serve import ThreadedServer
        from airflow_provider_dingtalk.testing.emulator.app import create_app
        from airflow_provider_dingtalk.testing.emulator.receiver import RECEIVER_PATH, HostedReceiver

        # The provider's receiver rides along at /dingtalk/events, as on Airflow's API server.
        self.receiver = HostedReceiver(self.state, self.app)
        self._server = ThreadedServer(
            self.receiver.wrap(create_app(self.state)),
            host=self._host,
            port=self._port,
            name="dingtalk-emulator",
        ).start()
        self.url = self._server.url
        self.receiver.url = self.url + RECEIVER_PATH
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    @property
    def running(self) -> bool:
        """Whether it answers on :attr:`url` (a test may have stopped it to play DingTalk being down)."""
        from urllib.parse import urlsplit

        if self._server is None:
            return False
        address = urlsplit(self.url)
        try:
            with socket.create_connection((address.hostname or "", address.port or 0), timeout=1):
                return True
        except OSError:
            return False

    def reset(self) -> None:
        """Forget what happened: requests, inbox, faults, tokens, robots, work-notification tasks,
        uploads, callback registrations, Stream connections, and the clock's offset. Apps stay.

        The hosted receiver keeps its memory of handled events, as a real API server would.
        """
        self.state.reset()

    def __enter__(self) -> DingTalkEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what happened -------------------------------------------------------------------------

    @property
    def app(self) -> EmulatedApp:
        """The first (by default the demo) app."""
        return next(iter(self.state.apps.values()))

    def requests(self, path: str | None = None) -> list[RequestRecord]:
        """Every request received (secrets masked), optionally only those to ``path``."""
        with self.state.lock:
            return [r for r in self.state.requests if path is None or r.path == path]

    def inbox(self, channel: str | None = None) -> list[Delivery]:
        """Messages delivered, optionally of one channel (``work_notification``, ``custom_robot`` …)."""
        with self.state.lock:
            return [d for d in self.state.inbox if channel is None or d.channel == channel]

    def calls(self, path: str) -> int:
        """How many requests reached ``path``."""
        return self.state.calls[path]

    def tasks(self) -> dict[int, Task]:
        """Work-notification send tasks by ``task_id``: message, recipients reached, recalled, status bar."""
        from airflow_provider_dingtalk.testing.emulator.endpoints.work_notification import work_notifications

        with self.state.lock:
            return dict(work_notifications(self.state).tasks)

    def uploads(self) -> dict[str, Upload]:
        """Media uploaded (``media/upload``) by ``media_id``: type, file name, bytes, app."""
        from airflow_provider_dingtalk.testing.emulator.endpoints.media import media

        with self.state.lock:
            return dict(media(self.state).uploads)

    # -- steering ------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (token expiry, rate-limit windows)."""
        self.state.clock.advance(seconds)

    def inject(self, path: str, **fault: Any) -> None:
        """Make the next call(s) to ``path`` fail; see :class:`Fault` for the options."""
        with self.state.lock:
            self.state.faults.append(Fault(path=path, **fault))

    def expire_tokens(self) -> None:
        self.state.expire_tokens()

    @overload
    def push_event(
        self, event: dict[str, Any], *, app: EmulatedApp | None = None, via: Literal["http"] = "http"
    ) -> bool: ...

    @overload
    def push_event(
        self, event: dict[str, Any], *, app: EmulatedApp | None = None, via: Literal["stream"]
    ) -> str: ...

    def push_event(
        self,
        event: dict[str, Any],
        *,
        app: EmulatedApp | None = None,
        via: Literal["http", "stream"] = "http",
    ) -> bool | str:
        """Push ``event`` (e.g. ``{"EventType": "bpms_instance_change", ...}``) as DingTalk does.

        ``via="http"``: encrypted and signed as DingTalk does, to the registered callback and to the
        console subscription (:meth:`subscribe_events`), whichever take its type; an event the
        registered URL does not acknowledge with an encrypted ``success`` lands in
        ``get_call_back_failed_result``.
        ``via="stream"``: down one of the app's Stream connections (see :attr:`stream`), pushed
        again until acked; an event pushed while no client is connected waits for one.

        :return: ``http``: whether every receiver acknowledged it; ``stream``: the ``eventId``.
        """
        if via == "stream":
            from airflow_provider_dingtalk.testing.emulator.endpoints.stream import push_event as stream_push

            return stream_push(self.state, app or self.app, event)
        from airflow_provider_dingtalk.testing.emulator.endpoints.callback import push_event

        return push_event(self.state, app or self.app, event)

    def subscribe_events(
        self,
        *,
        url: str,
        token: str,
        aes_key: str,
        tags: list[str],
        app: EmulatedApp | None = None,
    ) -> None:
        """Save an HTTP event subscription as an admin does in DingTalk's developer console.

        DingTalk then pushes with the AppKey as receiver id and ``msg_signature``/``timeStamp`` in the
        query (``register_call_back`` uses the corpId and ``signature``/``timestamp``). Saving sends
        ``check_url`` first, as the console does.

        :raises ValueError: the URL did not answer the check with an encrypted ``success``.
        """
        from airflow_provider_dingtalk.testing.emulator.endpoints.callback import subscribe

        subscribe(self.state, app or self.app, url=url, token=token, aes_key=aes_key, tags=tags)

    def push_robot_message(self, message: dict[str, Any], *, app: EmulatedApp | None = None) -> str:
        """Push a robot message (someone @-mentioned the app robot) over Stream; returns its ``msgId``.

        :param message: the robot message JSON (``text``, ``senderStaffId``, ``conversationId`` …);
            ``msgId`` is made up when absent, and a ``sessionWebhook`` (with its
            ``sessionWebhookExpiredTime``, 90 minutes on) that answers at ``/robot/sendBySession``.
        """
        return self.stream.push_robot_message(app or self.app, message, base_url=self.url)

    @cached_property
    def stream(self) -> StreamControls:
        """The Stream gateway: connections, acks, ``disconnect``, drops, redelivery timeout."""
        from airflow_provider_dingtalk.testing.emulator.endpoints.stream import StreamControls

        return StreamControls(self.state)

    # -- interactive cards ----------------------------------------------------------------------

    def publish_card_template(self, template_id: str, *, published: bool = True) -> None:
        """Make a card template exist, as an admin does in the card platform (False: a draft)."""
        from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import publish_template

        publish_template(self.state, template_id, published=published)

    def card(self, out_track_id: str, user_id: str | None = None) -> dict[str, str]:
        """What ``user_id`` sees on the card now (without ``user_id``: what everyone sees).

        :raises KeyError: no such card.
        """
        from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import cards

        with self.state.lock:
            return cards(self.state).cards[out_track_id].view(user_id)

    def cards(self) -> list[Card]:
        """Every card created, oldest first."""
        from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import cards

        with self.state.lock:
            return list(cards(self.state).cards.values())

    def click(
        self,
        out_track_id: str,
        user_id: str,
        action: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        connection: str | None = None,
    ) -> ClickResult:
        """``user_id`` taps the button ``action`` on the card, as DingTalk sends it (HTTP or Stream).

        The reply updates the card as DingTalk does. ``headers`` override the HTTP signature headers,
        to send a forged or replayed click; ``connection`` pins a Stream click to one connection.
        """
        from airflow_provider_dingtalk.testing.emulator.endpoints.interactive_card import click

        return click(
            self.state, out_track_id, user_id, action, params=params, headers=headers, connection=connection
        )

    # -- approvals (OA 审批): templates, and people acting on instances ---------------------------

    def add_approval_template(
        self,
        process_code: str,
        *,
        items: list[dict[str, Any]],
        approvers: list[str] | list[dict[str, Any]],
        name: str = "Approval",
        allow_revoke: bool = True,
    ) -> None:
        """A published OA template: its form (``schemaContent.items`` as the form-schema API returns
        them) and its approver chain (user ids, one node each, or ``{"actionType", "userIds"}`` nodes).
        ``PROC-EMULATOR-DATA-EXPORT`` exists from the start (approver ``user2``)."""
        from airflow_provider_dingtalk.testing.emulator.endpoints import workflow as wf

        with self.state.lock:
            wf.add_template(
                wf.workflow(self.state),
                process_code,
                name=name,
                items=items,
                approvers=approvers,
                allow_revoke=allow_revoke,
            )

    def approve(self, instance_id: str, user_id: str, remark: str = "") -> None:
        """``user_id`` agrees to their open task on the instance, in DingTalk's app."""
        from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import approve

        approve(self.state, instance_id, user_id, remark)

    def refuse(self, instance_id: str, user_id: str, remark: str = "") -> None:
        """``user_id`` refuses: the instance ends ``COMPLETED`` / ``refuse``."""
        from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import refuse

        refuse(self.state, instance_id, user_id, remark)

    def revoke(self, instance_id: str, remark: str = "") -> None:
        """The originator revokes it (not in its first 15 s on the emulator's clock)."""
        from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import revoke

        revoke(self.state, instance_id, remark)

    def auto_decide(self, process_code: str, *, result: str = "agree", after: float = 0.0) -> None:
        """Instances of the template decide themselves ``after`` seconds after creation (for demos)."""
        from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import auto_decide

        auto_decide(self.state, process_code, result=result, after=after, remark="decided by the emulator")

    def approval_instances(self) -> list[dict[str, Any]]:
        """Every instance, as the GET answers it, with ``instanceId``; oldest first."""
        from airflow_provider_dingtalk.testing.emulator.endpoints import workflow as wf

        with self.state.lock:
            ids = list(wf.workflow(self.state).instances)
        return [{"instanceId": i, **wf.render(self.state, i)} for i in ids]

    # -- connections for Airflow ----------------------------------------------------------------

    def connection(self, app: EmulatedApp | None = None, **extra: Any) -> dict[str, Any]:
        """An Airflow ``dingtalk`` connection (as a dict) pointing at this emulator."""
        app = app or self.app
        return {
            "conn_type": "dingtalk",
            "host": self.url,
            "login": app.app_key,
            "password": app.app_secret,
            "schema": str(app.agent_id),  # the form's "Agent ID"
            "extra": {"api_host": self.url, **extra},
        }

    def connection_json(self, app: EmulatedApp | None = None, **extra: Any) -> str:
        """The same, as the JSON that ``AIRFLOW_CONN_<ID>`` environment variables take."""
        return json.dumps(self.connection(app, **extra))

    def add_robot(
        self, name: str = "default", *, secret: bool | str = True, keywords: tuple[str, ...] = ()
    ) -> EmulatedRobot:
        """A custom robot (or the one named ``name``): ``.token``, ``.secret`` (``None`` if unsigned).

        :param secret: ``True`` makes up a ``SEC…`` secret, a string sets it, ``False`` means no signing.
        :param keywords: custom keywords; a message containing none of them gets 310000.
        """
        from airflow_provider_dingtalk.testing.emulator.endpoints.custom_robot import add_robot

        return add_robot(self.state, name, secret=secret, keywords=keywords)

    def webhook_connection_json(self, robot: EmulatedRobot | None = None, **extra: Any) -> str:
        """A ``dingtalkcustomrobot`` connection for ``robot`` (default: the signed robot "default")."""
        robot = robot or self.add_robot()
        extra = {"secret": robot.secret, **extra} if robot.secret else extra
        return json.dumps(
            {"conn_type": "dingtalkcustomrobot", "host": self.url, "password": robot.token, "extra": extra}
        )

    def airflow_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables for the default connection ids of every hook, all pointing here."""
        return {
            "AIRFLOW_CONN_DINGTALK_DEFAULT": self.connection_json(),
            "AIRFLOW_CONN_DINGTALK_CUSTOM_ROBOT_DEFAULT": self.webhook_connection_json(),
            "AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT": json.dumps(self.receiver.connection()),
        }
