"""The plugin's receiver (what the API server mounts) reads the ``dingtalkcallback`` connection again."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_dingtalk._serve import ThreadedServer
from tests.events.test_receiver import AES_KEY, CORP, TOKEN, post, sealed


def callback_conn(key: str, token: str) -> str:
    return json.dumps(
        {"conn_type": "dingtalkcallback", "login": CORP, "password": key, "extra": {"token": token}}
    )


def test_the_plugin_notices_a_rotated_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_dingtalk.events import plugin

    monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT", callback_conn(AES_KEY, TOKEN))
    receiver = plugin._LazyReceiver()
    with ThreadedServer(receiver) as server:
        url = server.url + "/events"
        check = {"EventType": "check_url"}  # the handshake: verified and answered, no asset event
        assert post(url, *sealed(check)).status_code == 200
        new_key, new_token = "Y" * 43, "rotated"
        monkeypatch.setenv("AIRFLOW_CONN_DINGTALK_CALLBACK_DEFAULT", callback_conn(new_key, new_token))
        time.sleep(1.1)
        assert post(url, *sealed(check, key=new_key, token=new_token)).status_code == 200
        assert post(url, *sealed(check)).status_code == 403  # the old secrets no longer work
