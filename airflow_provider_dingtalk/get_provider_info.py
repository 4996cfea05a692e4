"""Provider metadata for Airflow's provider discovery.

This module must import nothing else: Airflow calls it while it is initialising, and a failure here
breaks every ``airflow`` command in the user's environment (tests validate it against Airflow's
own provider-info schemas). The package ``__init__`` is already imported by then and imports nothing.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_dingtalk import __version__

_PKG = "airflow_provider_dingtalk"
_TIMEOUT_HELP = "Seconds; leave empty for the default."
# Only for a proxy that forwards to DingTalk under its own address, or the emulator: the placeholder
# is the one hint Airflow 3's form shows on a standard field (it has no help text for them).
_HOST_HINT = "leave empty; only for a proxy or the emulator"
# Both HTTP connection types take the same outbound proxy and timeouts (defaults as in hooks/base.py;
# no import here).
_HTTP_FIELDS = {
    "proxy": {
        "label": "Outbound proxy",
        "schema": {"type": ["string", "null"]},
        "description": "e.g. http://proxy.example.com:3128, for every call to DingTalk. Leave empty to "
        "use HTTPS_PROXY and NO_PROXY from the environment, or none.",
    },
    "connect_timeout": {
        "label": "Connect timeout",
        "schema": {"type": ["number", "null"], "default": 5},
        "description": _TIMEOUT_HELP,
    },
    "read_timeout": {
        "label": "Read timeout",
        "schema": {"type": ["number", "null"], "default": 15},
        "description": _TIMEOUT_HELP,
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-dingtalk",
        "name": "DingTalk",
        "description": "DingTalk (钉钉): work notifications, group robots, failure alerts, event callbacks.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "DingTalk",
                "external-doc-url": "https://open.dingtalk.com/document/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "DingTalk",
                "python-modules": [
                    f"{_PKG}.hooks.custom_robot",
                    f"{_PKG}.hooks.base",
                    f"{_PKG}.hooks.work_notification",
                    f"{_PKG}.hooks.app_robot",
                    f"{_PKG}.hooks.callback",
                    f"{_PKG}.hooks.event_callback",
                    f"{_PKG}.hooks.interactive_card",
                    f"{_PKG}.hooks.approval",
                ],
            }
        ],
        "connection-types": [
            {
                "connection-type": "dingtalkcustomrobot",
                "hook-class-name": f"{_PKG}.hooks.custom_robot.DingTalkCustomRobotHook",
                "hook-name": "DingTalk Custom Robot",
                "conn-fields": {
                    "secret": {
                        "label": "Signing secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "The robot's secret (SEC…) when its security settings use signing "
                        "(加签); leave empty otherwise.",
                    },
                    **_HTTP_FIELDS,
                },
                # "extra" is not hidden: Airflow 3's form always shows the Extra Fields JSON box
                # (its field behaviours cover only the standard fields), so hiding it did nothing.
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"password": "Robot access token (or webhook URL)"},
                    "placeholders": {
                        "host": _HOST_HINT,
                        "password": "https://oapi.dingtalk.com/robot/send?access_token=…",
                    },
                },
            },
            {
                "connection-type": "dingtalk",
                "hook-class-name": f"{_PKG}.hooks.base.DingTalkBaseHook",
                "hook-name": "DingTalk App",
                "conn-fields": {
                    "api_host": {
                        "label": "v1.0 API host",
                        "schema": {"type": ["string", "null"]},
                        "description": "Leave empty for https://api.dingtalk.com. Only for a proxy or the "
                        "emulator, and then needed whenever Host is set.",
                    },
                    **_HTTP_FIELDS,
                    "shared_cache": {
                        "label": "Share the access token between task processes",
                        "schema": {"type": ["boolean", "null"], "default": True},
                        "description": "Keep the app access token in a file cache (mode 0600) so that all "
                        "task processes on a machine share one token.",
                    },
                    "hitl_users": {
                        "label": "HITL users (DingTalk userId → Airflow user id)",
                        # Text holding JSON: Airflow's form draws an "object" field as an editor without
                        # a label or input of its own, and the hook reads either form.
                        "schema": {"type": ["string", "null"]},
                        "description": 'For answers from interactive cards, e.g. {"manager1": "alice"}. '
                        "Only mapped users who are assigned to a task can answer it; empty: nobody.",
                    },
                    "hitl_card_template_id": {
                        "label": "HITL card template id",
                        "schema": {"type": ["string", "null"]},
                        "description": "The published interactive card template (….schema) for "
                        "human-in-the-loop requests.",
                    },
                    "card_callback_route_key": {
                        "label": "Card callback route key",
                        "schema": {"type": ["string", "null"]},
                        "description": "The HTTP callback route of cards sent with callback_type HTTP.",
                    },
                    "card_callback_api_secret": {
                        "label": "Card callback api secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "The apiSecret registered with the card callback route; DingTalk "
                        "signs every click with it.",
                    },
                },
                # Agent ID is needed for every work notification, so it is a standard field (the unused
                # Schema, relabelled), open in the form, rather than an extra in the collapsed section.
                "ui-field-behaviour": {
                    "hidden-fields": ["port"],
                    "relabeling": {
                        "login": "AppKey (Client ID)",
                        "password": "AppSecret (Client Secret)",
                        "schema": "Agent ID",
                    },
                    "placeholders": {
                        "host": _HOST_HINT,
                        "login": "dingxxxxxxxxxxxxxxxx",
                        "schema": "AgentId, e.g. 3241234567: needed for work notifications",
                    },
                },
            },
            {
                "connection-type": "dingtalkcallback",
                "hook-class-name": f"{_PKG}.hooks.event_callback.DingTalkEventCallbackHook",
                "hook-name": "DingTalk Event Callback",
                "conn-fields": {
                    "token": {
                        "label": "Token",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "The callback token (signs every push).",
                    },
                    "max_skew": {
                        "label": "Allowed clock skew",
                        "schema": {"type": ["number", "null"], "default": 300},
                        "description": "Seconds a request's timestamp may differ from now; older ones "
                        "are refused as replays.",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Callback URL",
                        "login": "Receiver id (corpId or AppKey)",
                        "password": "aes_key (43 characters)",
                    },
                    "placeholders": {
                        "host": "https://airflow.example.com/dingtalk/events",
                        "login": "dingxxxxxxxxxxxxxxxx",
                    },
                },
            },
        ],
        "operators": [
            {
                "integration-name": "DingTalk",
                "python-modules": [
                    f"{_PKG}.operators.custom_robot",
                    f"{_PKG}.operators.app_robot",
                    f"{_PKG}.operators.dingding",
                ],
            },
            {"integration-name": "DingTalk", "python-modules": [f"{_PKG}.operators.callback"]},
            {"integration-name": "DingTalk", "python-modules": [f"{_PKG}.operators.work_notification"]},
            {"integration-name": "DingTalk", "python-modules": [f"{_PKG}.operators.approval"]},
        ],
        "sensors": [
            {"integration-name": "DingTalk", "python-modules": [f"{_PKG}.sensors.approval"]},
        ],
        "triggers": [
            {"integration-name": "DingTalk", "python-modules": [f"{_PKG}.triggers.work_notification"]},
            {"integration-name": "DingTalk", "python-modules": [f"{_PKG}.triggers.approval"]},
        ],
        "notifications": [
            f"{_PKG}.notifications.work_notification.DingTalkNotifier",
            f"{_PKG}.notifications.custom_robot.DingTalkCustomRobotNotifier",
            f"{_PKG}.notifications.app_robot.DingTalkAppRobotNotifier",
            f"{_PKG}.notifications.hitl.DingTalkHITLNotifier",
        ],
        # Options events/plugin.py reads. Airflow's config init loads them, so `airflow config list`
        # and `get-value` show them with their defaults.
        "config": {
            "dingtalk": {
                "description": "The DingTalk event receiver that the provider's plugin mounts on the API "
                "server at <api base>/dingtalk/events, and where state shared between workers lives.",
                "options": {
                    "receiver_enabled": {
                        "description": "Mount the event receiver on the API server. Set to False where "
                        "DingTalk callbacks are not used, or are received by the standalone "
                        "dingtalk-event-receiver.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    },
                    "callback_conn_id": {
                        "description": "The dingtalkcallback connection (token, aes_key, receiver id) "
                        "the receiver verifies and decrypts DingTalk's pushes with. Read on the first "
                        "request, so the API server starts before the connection exists.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "dingtalk_callback_prod",
                        "default": "dingtalk_callback_default",
                    },
                    "card_conn_id": {
                        "description": "The dingtalk connection whose extra holds the interactive "
                        "cards' callback settings: hitl_users (DingTalk userId to Airflow user id; only "
                        "mapped assigned users may answer) and card_callback_api_secret. Read by the card "
                        "callback at <api base>/dingtalk/cards/callback.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "dingtalk_prod",
                        "default": "dingtalk_default",
                    },
                    "card_stream_enabled": {
                        "description": "Hold a Stream connection in each API server process for "
                        "interactive card clicks (DingTalk's default callback way, no public URL needed). "
                        "It connects only while the card connection's hitl_users maps someone; False "
                        "leaves clicks to the HTTP card callback.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    },
                    "state_backend": {
                        "description": "Where access tokens, the custom robots' send windows, the alert "
                        "spool and the receiver's handled events are shared: file (this machine's "
                        "private state folder) or redis (the whole cluster; needs the redis extra and "
                        "redis_url). A connection's extras state_backend and redis_url override it.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "redis",
                        "default": "file",
                    },
                    "redis_url": {
                        "description": "The Redis server of state_backend = redis, e.g. "
                        "redis://:password@redis:6379/3. Never logged with its password.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "sensitive": True,
                        "example": "redis://:password@redis:6379/3",
                        "default": "",
                    },
                },
            }
        },
        # Airflow calls the handler on every Asset URI of the scheme (Airflow docs, "Asset Definitions").
        "asset-uris": [{"schemes": ["dingtalk"], "handler": f"{_PKG}.assets.sanitize_uri"}],
        # No "plugins" here: the event receiver's plugin is an `airflow.plugins` entry point (see
        # pyproject.toml), which Airflow always loads; listed here too it would load twice when
        # lazy_discover_providers is off, and show as a plugin import error.
    }
