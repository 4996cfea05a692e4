"""DingTalk's own Python SDK (``dingtalk-stream``) as a client of the emulator's gateway: a check that
the gateway speaks the protocol as DingTalk does, not only as our client expects."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

pytest.importorskip("dingtalk_stream")

_SDK_CLIENT = """
import asyncio, json, sys
import dingtalk_stream

class Handler(dingtalk_stream.EventHandler):
    async def process(self, event):
        print(json.dumps({"eventId": event.headers.event_id, "type": event.headers.event_type,
                          "data": event.data}), flush=True)
        return dingtalk_stream.AckMessage.STATUS_OK, "OK"

client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(sys.argv[1], sys.argv[2]))
client.register_all_event_handler(Handler())
asyncio.run(asyncio.wait_for(client.start(), 20))
"""


def test_the_official_sdk_connects_receives_and_acks(emulator: DingTalkEmulator) -> None:
    app = emulator.app
    env = {"DINGTALK_OPENAPI_ENDPOINT": emulator.url, "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SDK_CLIENT, app.app_key, app.app_secret],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        emulator.stream.wait_for_connections(timeout=20)
        event_id = emulator.push_event(
            {"EventType": "bpms_instance_change", "processInstanceId": "pi-9", "type": "start"}, via="stream"
        )
        emulator.stream.wait_until_acked(timeout=10)  # the SDK's ack (code 200, no status) counts
        line = proc.stdout.readline() if proc.stdout else ""
    finally:
        proc.kill()
        proc.wait(10)
    assert f'"eventId": "{event_id}"' in line and '"processInstanceId": "pi-9"' in line
    (ack,) = emulator.stream.acks()
    assert ack.code == 200  # and, as the SDK does, the event data echoed instead of {"status": ...}
