"""The provider's real receiver, hosted by the emulator at ``/dingtalk/events`` as Airflow's API server would.

So that a demo can register a callback (the handshake needs a live receiver) and see pushed events
become asset events without starting an API server: the emulator's process plays Airflow's. Asset
events go to the metadata DB of this process (:class:`DatabaseAssetSink`).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp, EmulatorState

RECEIVER_PATH = "/dingtalk/events"


class HostedReceiver:
    """Callback settings made up for the emulator's app, and the ASGI app that serves both."""

    def __init__(self, state: EmulatorState, app: EmulatedApp) -> None:
        # From the state's random source: repeatable under a seed, from `secrets` otherwise.
        self.token, self.aes_key = state.random_alnum(16), state.random_alnum(43)
        self.receiver_id = app.corp_id
        self._clock = state.clock.now
        state.add_secret(self.token)
        state.add_secret(self.aes_key)
        self.url = ""

    def connection(self) -> dict[str, Any]:
        """A ``dingtalkcallback`` connection for these settings."""
        return {
            "conn_type": "dingtalkcallback",
            "host": self.url,
            "login": self.receiver_id,
            "password": self.aes_key,
            "extra": {"token": self.token},
        }

    def wrap(self, emulator_app: Any) -> Any:
        """One ASGI app: the receiver under ``/dingtalk/``, the emulator everywhere else."""
        from airflow_provider_dingtalk.events.app import create_receiver_app
        from airflow_provider_dingtalk.events.sinks import DatabaseAssetSink
        from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig

        config = CallbackConfig(
            receiver_id=self.receiver_id, token=Secret(self.token), aes_key=Secret(self.aes_key), url=None
        )
        # The receiver checks timestamps against the emulator's clock, which signs the pushes: a test
        # that moves the emulator's clock moves "now" for both sides, as for DingTalk and a real host.
        receiver = create_receiver_app(
            config=config, sink=DatabaseAssetSink(), path=RECEIVER_PATH, clock=self._clock
        )

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/dingtalk/"):
                await receiver(scope, receive, send)
            else:
                await emulator_app(scope, receive, send)

        return app
