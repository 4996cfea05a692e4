"""``repr()``/``str()`` of every hook, operator, notifier and config object that holds a secret show none,
and secrets passed to the callback operators are masked in the rendered fields Airflow stores."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

AES_KEY = "LiteralAesKey0123456789abcdefghijklmnopqrsT"
TOKEN = "literal-callback-token-42"


def _secrets(emulator: DingTalkEmulator) -> list[str]:
    values = set(emulator.state.known_secrets()) | {AES_KEY, TOKEN}
    for raw in emulator.airflow_env().values():
        conn = json.loads(raw)
        values.add(conn["password"])
        values |= {v for k, v in conn["extra"].items() if k in ("token", "secret")}
    return sorted(v for v in values if v)


def _objects(emulator: DingTalkEmulator) -> list[Any]:
    from airflow_provider_dingtalk._redact import Secret
    from airflow_provider_dingtalk.events.sinks import RestApiAssetSink
    from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook
    from airflow_provider_dingtalk.hooks.custom_robot import DingTalkCustomRobotHook
    from airflow_provider_dingtalk.hooks.event_callback import DingTalkEventCallbackHook
    from airflow_provider_dingtalk.notifications.app_robot import DingTalkAppRobotNotifier
    from airflow_provider_dingtalk.notifications.custom_robot import DingTalkCustomRobotNotifier
    from airflow_provider_dingtalk.notifications.work_notification import DingTalkNotifier
    from airflow_provider_dingtalk.operators.app_robot import DingTalkAppRobotOperator
    from airflow_provider_dingtalk.operators.callback import DingTalkRegisterCallbackOperator
    from airflow_provider_dingtalk.operators.custom_robot import DingTalkCustomRobotOperator
    from airflow_provider_dingtalk.operators.work_notification import DingTalkMessageOperator

    hook = DingTalkBaseHook()
    hook.get_access_token()  # a live token in the hook's caches
    webhook = DingTalkCustomRobotHook()
    callback = DingTalkEventCallbackHook()
    config = callback.get_config()
    operators: list[Any] = [
        DingTalkMessageOperator(task_id="m", text="hi", userid_list=["user1"]),
        DingTalkCustomRobotOperator(task_id="w", text="hi"),
        DingTalkAppRobotOperator(task_id="r", text="hi", user_ids=["user1"]),
        DingTalkRegisterCallbackOperator(
            task_id="c", call_back_tags=["check_in"], token=TOKEN, aes_key=AES_KEY
        ),
    ]
    for op in operators:
        op.hook  # noqa: B018 - the cached hook (with its connection) is part of what could print
    return [
        hook,
        hook.app,
        webhook,
        webhook.robot,
        callback,
        config,
        config.crypto(),
        Secret(AES_KEY),
        RestApiAssetSink("http://airflow", username="admin", password=TOKEN, token=AES_KEY),
        *operators,
        DingTalkNotifier(userid_list=["user1"]),
        DingTalkCustomRobotNotifier(),
        DingTalkAppRobotNotifier(user_ids=["user1"]),
    ]


def test_repr_and_str_show_no_secret(dingtalk_airflow: DingTalkEmulator) -> None:
    secrets = _secrets(dingtalk_airflow)
    assert len(secrets) >= 6
    for obj in _objects(dingtalk_airflow):
        shown = [repr(obj), str(obj)]
        # Hooks and configs hold secrets as Secret, so even their attributes (what a traceback with
        # locals or a debugger shows) print none. Operators keep their arguments as given.
        if type(obj).__name__.endswith(("Hook", "Config")):
            shown += [f"{k}={v!r}" for k, v in vars(obj).items()]
        for text in shown:
            found = [i for i, secret in enumerate(secrets) if secret in text]
            assert not found, (
                f"{type(obj).__name__}: secret #{found} in {text.replace(secrets[found[0]], '<secret>')}"
            )


def test_callback_operator_secrets_are_masked_in_rendered_fields(dingtalk_airflow: DingTalkEmulator) -> None:
    from airflow.sdk.log import redact

    from airflow_provider_dingtalk.operators.callback import DingTalkRegisterCallbackOperator

    op = DingTalkRegisterCallbackOperator(
        task_id="register", call_back_tags=["check_in"], token="{{ params.t }}", aes_key=AES_KEY
    )
    op.render_template_fields({"params": {"t": TOKEN}})
    assert op.token == TOKEN
    # What Airflow's task runner does next (_serialize_rendered_fields): redact each field by name.
    stored = {name: redact(getattr(op, name), name) for name in op.template_fields}
    assert TOKEN not in json.dumps(stored) and AES_KEY not in json.dumps(stored), stored
