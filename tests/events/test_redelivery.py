"""DingTalk's retries while the first delivery is still being written, and partial writes over several assets.

DingTalk re-sends an event it did not see acknowledged within about 1.5 s (the emulator's deadline).
A retry may be acknowledged only once the event is durably recorded: acknowledging it while the first
attempt is still in the sink loses the event when that attempt then fails, since DingTalk stops
retrying after a ``success``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI, Request

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk._serve import ThreadedServer
from airflow_provider_dingtalk.events.app import create_receiver_app
from airflow_provider_dingtalk.events.dedup import DedupStore
from airflow_provider_dingtalk.events.sinks import RestApiAssetSink, SinkUnavailable
from airflow_provider_dingtalk.hooks.event_callback import CallbackConfig
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.callback import DEADLINE
from tests.events.test_receiver import AES_KEY, CONFIG, EVENT, TOKEN, post, sealed

TAGS = ["bpms_instance_change"]


def register(emulator: DingTalkEmulator, url: str) -> None:
    """Register ``url`` as the app's callback through the emulator's own API (as an operator would)."""
    app = emulator.app
    got = requests.get(
        emulator.url + "/gettoken", params={"appkey": app.app_key, "appsecret": app.app_secret}, timeout=5
    ).json()
    resp = requests.post(
        emulator.url + "/call_back/register_call_back",
        params={"access_token": got["access_token"]},
        json={"call_back_tag": TAGS, "token": TOKEN, "aes_key": AES_KEY, "url": url},
        timeout=5,
    ).json()
    assert resp["errcode"] == 0, resp


class SlowFirstAttemptSink:
    """The first write outlives DingTalk's deadline and then fails (a locked DB); later writes succeed."""

    def __init__(self, *, first_fails: bool) -> None:
        self.first_fails = first_fails
        self.events: list[dict[str, Any]] = []
        self.calls = 0
        self._lock = threading.Lock()

    def emit(self, event_type: str, event: dict[str, Any]) -> int:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            time.sleep(DEADLINE + 0.4)  # DingTalk gives up on this attempt and retries meanwhile
            if self.first_fails:
                raise SinkUnavailable("database is locked")
        self.events.append(event)
        return 1


def corp_config(emulator: DingTalkEmulator) -> CallbackConfig:
    return CallbackConfig(
        receiver_id=emulator.app.corp_id, token=Secret(TOKEN), aes_key=Secret(AES_KEY), url=None
    )


@pytest.mark.parametrize("first_fails", [True, False], ids=["first-attempt-fails", "first-attempt-slow"])
def test_retry_during_a_slow_first_attempt_is_acknowledged_only_once_the_event_is_recorded(
    dingtalk_emulator: DingTalkEmulator, tmp_path: Path, first_fails: bool
) -> None:
    sink = SlowFirstAttemptSink(first_fails=first_fails)
    app = create_receiver_app(
        config=corp_config(dingtalk_emulator), sink=sink, dedup=DedupStore(tmp_path / "s")
    )
    with ThreadedServer(app, name="receiver") as server:
        register(dingtalk_emulator, server.url + "/dingtalk/events")
        assert not dingtalk_emulator.push_event(EVENT)  # attempt 1: no answer within DingTalk's deadline
        acknowledged = dingtalk_emulator.push_event(EVENT)  # the retry, while attempt 1 is still writing
        # A "success" makes DingTalk stop: by then the event must be recorded, exactly once.
        assert acknowledged
        assert sink.events == [EVENT]
        time.sleep(0.5)  # attempt 1 has finished by now either way
        assert sink.events == [EVENT]
        assert dingtalk_emulator.push_event(EVENT)  # a later retry: a duplicate, acknowledged
        assert sink.events == [EVENT]


class BlockingSink:
    def __init__(self) -> None:
        self.go, self.started = threading.Event(), threading.Event()
        self.events: list[dict[str, Any]] = []

    def emit(self, event_type: str, event: dict[str, Any]) -> int:
        self.started.set()
        assert self.go.wait(10)
        self.events.append(event)
        return 1


def test_retry_while_the_first_attempt_is_still_pending_is_told_to_retry_later(tmp_path: Path) -> None:
    sink = BlockingSink()
    app = create_receiver_app(config=CONFIG, sink=sink, dedup=DedupStore(tmp_path / "s"))
    with ThreadedServer(app, name="receiver") as server:
        url = server.url + "/dingtalk/events"
        first = threading.Thread(target=post, args=(url, *sealed(EVENT)))
        first.start()
        assert sink.started.wait(5)
        started = time.monotonic()
        retry = post(url, *sealed(EVENT))
        assert retry.status_code == 503  # not "success": DingTalk must come back
        assert time.monotonic() - started < DEADLINE  # answered within DingTalk's deadline
        sink.go.set()
        first.join(10)
        assert post(url, *sealed(EVENT)).status_code == 200
    assert sink.events == [EVENT]


class FakeAirflowApi:
    """Airflow's two REST endpoints the standalone receiver calls; one POST can be made to fail.

    Not DingTalk: the real Airflow API server is exercised in test_standalone.py; here two assets
    share one URI and a POST fails half-way, which a real server does not do on request.
    """

    def __init__(self) -> None:
        self.posted: list[int] = []
        self.fail_asset: int | None = None
        self.app = FastAPI()

        @self.app.get("/api/v2/assets")
        def assets() -> dict[str, Any]:
            uri = "dingtalk://events/bpms_instance_change"
            return {"assets": [{"id": 1, "uri": uri}, {"id": 2, "uri": uri}]}

        @self.app.post("/api/v2/assets/events")
        async def create(request: Request) -> Any:
            from fastapi.responses import JSONResponse

            asset_id = (await request.json())["asset_id"]
            if asset_id == self.fail_asset:
                self.fail_asset = None
                return JSONResponse({"detail": "database is locked"}, status_code=503)
            self.posted.append(asset_id)
            return {"id": len(self.posted)}


@pytest.fixture
def airflow_api() -> Iterator[tuple[FakeAirflowApi, str]]:
    api = FakeAirflowApi()
    with ThreadedServer(api.app, name="fake-airflow") as server:
        yield api, server.url


def test_partial_failure_over_two_assets_writes_each_asset_event_once(
    airflow_api: tuple[FakeAirflowApi, str], tmp_path: Path
) -> None:
    api, api_url = airflow_api
    store = DedupStore(tmp_path / "s")
    sink = RestApiAssetSink(api_url, token="jwt", progress=store)
    app = create_receiver_app(config=CONFIG, sink=sink, dedup=store)
    api.fail_asset = 2
    with ThreadedServer(app, name="receiver") as server:
        url = server.url + "/dingtalk/events"
        assert post(url, *sealed(EVENT)).status_code == 503  # asset 1 written, asset 2 failed
        assert api.posted == [1]
        assert post(url, *sealed(EVENT)).status_code == 200  # DingTalk's retry
        assert post(url, *sealed(EVENT)).status_code == 200
    assert api.posted == [1, 2]  # asset 1's event was not written twice
