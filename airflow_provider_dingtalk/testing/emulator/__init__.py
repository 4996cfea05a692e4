"""A local DingTalk for tests and demos, faithful to DingTalk's limits, errors and crypto.

Light to import: FastAPI and uvicorn load only when an emulator starts.
"""

from __future__ import annotations

from airflow_provider_dingtalk.testing.emulator.fake_time import EmulatorTime
from airflow_provider_dingtalk.testing.emulator.server import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.state import (
    DEMO_APP,
    Delivery,
    EmulatedApp,
    Fault,
    RequestRecord,
)

__all__ = [
    "DEMO_APP",
    "Delivery",
    "DingTalkEmulator",
    "EmulatedApp",
    "EmulatorTime",
    "Fault",
    "RequestRecord",
]
