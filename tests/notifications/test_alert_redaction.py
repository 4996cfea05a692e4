"""An alert's error text goes through Airflow's secrets masker before it is sent to DingTalk."""

from __future__ import annotations

import json

from airflow_provider_dingtalk.notifications import DingTalkCustomRobotNotifier
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.notifications.test_notifiers import FAST, channels, fake_context

__all__ = ["channels"]  # the fixture, imported for pytest

MASKED = "dt-masked-Xq7Lp2Vw9"  # what a connection's password or a sensitive Variable would register


def test_a_value_airflow_masks_is_redacted_from_the_alert(channels: DingTalkEmulator) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(MASKED)
    notifier = DingTalkCustomRobotNotifier(retry_policy=FAST)
    notifier(fake_context(exception=RuntimeError(f"login failed with password {MASKED}")))
    (delivery,) = channels.inbox("custom_robot")
    text = json.dumps(delivery.message, ensure_ascii=False)
    assert "login failed with password ***" in text
    assert MASKED not in text
