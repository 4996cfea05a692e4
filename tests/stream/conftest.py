"""Stream tests: the emulator's gateway over real WebSockets on loopback, a client with short timings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from airflow_provider_dingtalk._redact import Secret
from airflow_provider_dingtalk.stream.client import Backoff, DingTalkStreamClient, StreamMessage
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator


@pytest.fixture
def emulator() -> Iterator[DingTalkEmulator]:
    with DingTalkEmulator(seed=7) as emu:
        emu.stream.redelivery_timeout = 0.5
        emu.stream.disconnect_grace = 0.5
        yield emu


def make_client(emulator: DingTalkEmulator, **kwargs: Any) -> DingTalkStreamClient:
    """A client of the emulator's demo app with test-sized timings (no waits of DingTalk's size)."""
    app = emulator.app
    options: dict[str, Any] = {
        "keepalive_interval": 0.2,
        "keepalive_timeout": 0.3,
        "open_timeout": 2.0,
        "backoff": Backoff(base=0.05, cap=0.2),
        **kwargs,
    }
    return DingTalkStreamClient(
        app_key=app.app_key, app_secret=Secret(app.app_secret), api_host=emulator.url, **options
    )


async def take(
    messages: AsyncIterator[StreamMessage], count: int, *, timeout: float = 10.0
) -> list[StreamMessage]:
    got: list[StreamMessage] = []

    async def run() -> None:
        async for message in messages:
            got.append(message)
            if len(got) == count:
                return

    await asyncio.wait_for(run(), timeout)
    return got


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Emulator controls block until the server's loop has acted: keep them off the test's loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)
