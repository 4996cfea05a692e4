"""The provider registers with Airflow, and its metadata passes Airflow's own schemas."""

from __future__ import annotations

import importlib
import json
import re
from importlib.metadata import entry_points, version
from pathlib import Path

import airflow
import jsonschema
import pytest

import airflow_provider_dingtalk
from airflow_provider_dingtalk.event_types import event_asset_uri
from airflow_provider_dingtalk.get_provider_info import get_provider_info

AIRFLOW_DIR = Path(airflow.__file__).parent


@pytest.mark.parametrize("schema_file", ["provider_info.schema.json", "provider.yaml.schema.json"])
def test_provider_info_matches_airflow_schema(schema_file: str) -> None:
    schema = json.loads((AIRFLOW_DIR / schema_file).read_text())
    info = get_provider_info()
    if schema_file == "provider.yaml.schema.json":
        # The dev schema also describes release bookkeeping that only Airflow's own repo has.
        info = {**info, "state": "ready", "source-date-epoch": 1, "versions": info["versions"]}
        schema = {**schema, "required": [r for r in schema.get("required", []) if r in info]}
    jsonschema.validate(info, schema)


def test_entry_point_points_at_get_provider_info() -> None:
    (ep,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.dist and e.dist.name == "airflow-provider-dingtalk"
    ]
    assert ep.load() is get_provider_info


def test_get_provider_info_module_imports_nothing() -> None:
    source = Path(
        importlib.import_module("airflow_provider_dingtalk.get_provider_info").__file__ or ""
    ).read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    # The package __init__ is imported before this module anyway, and itself imports nothing.
    assert imports == [
        "from __future__ import annotations",
        "from typing import Any",
        "from airflow_provider_dingtalk import __version__",
    ]


def test_one_version_everywhere() -> None:
    # The distribution's metadata comes from __init__ through hatch; provider info reads __init__.
    installed = version("airflow-provider-dingtalk")
    assert installed == airflow_provider_dingtalk.__version__
    assert get_provider_info()["versions"] == [installed]


def test_every_dingtalk_option_the_code_reads_is_declared_with_its_default() -> None:
    package = Path(airflow_provider_dingtalk.__file__).parent
    read = {
        key
        for path in package.rglob("*.py")
        for key in re.findall(r'(?:_conf\(|conf\.get\("dingtalk", )"(\w+)"', path.read_text())
    }
    options = get_provider_info()["config"]["dingtalk"]["options"]
    expected = {"callback_conn_id", "card_conn_id", "receiver_enabled", "state_backend", "redis_url"}
    assert read == set(options) == expected
    # Airflow's config init loads providers' options, so the defaults come without a fallback.
    from airflow.configuration import conf

    assert conf.get("dingtalk", "callback_conn_id") == "dingtalk_callback_default"
    assert conf.getboolean("dingtalk", "receiver_enabled") is True
    assert conf.get("dingtalk", "card_conn_id") == "dingtalk_default"
    assert conf.get("dingtalk", "state_backend") == "file"
    assert conf.get("dingtalk", "redis_url") == ""
    # The URL may hold a password: Airflow hides it in `airflow config list` and the UI.
    assert options["redis_url"]["sensitive"] is True


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("dingtalk://events/bpms_instance_change", "dingtalk://events/bpms_instance_change"),
        ("DingTalk://Events/user_add_org/", "dingtalk://events/user_add_org"),
        ("dingtalk://events/check_in#ignored", "dingtalk://events/check_in"),
    ],
)
def test_dingtalk_asset_uri_is_normalised_to_what_the_receiver_writes(written: str, stored: str) -> None:
    from airflow.sdk import Asset

    asset = Asset(uri=written)
    assert asset.uri == stored == event_asset_uri(stored.rpartition("/")[2])
    assert asset.normalized_uri == stored


def test_the_robot_message_asset_uri_is_accepted() -> None:
    from airflow.sdk import Asset

    from airflow_provider_dingtalk.event_types import ROBOT_MESSAGE_ASSET_URI

    assert Asset(uri="dingtalk://Robot/messages").uri == ROBOT_MESSAGE_ASSET_URI


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("dingtalk://robots/bpms_instance_change", "the host must be 'events'"),
        ("dingtalk://robot/mentions", "the host must be 'events'"),
        ("dingtalk://admin@events/bpms_instance_change", "the host must be 'events'"),
        ("dingtalk://events:8080/bpms_instance_change", "the host must be 'events'"),
        ("dingtalk://events/", "got ''"),
        ("dingtalk://events/bpms/instance", "got 'bpms/instance'"),
        ("dingtalk://events/BPMS_instance_change", "lower-case snake case"),
        ("dingtalk://events/bpms_instance_change?type=finish", "no query string"),
    ],
)
def test_a_dingtalk_asset_uri_the_receiver_never_writes_is_refused(uri: str, reason: str) -> None:
    from airflow.sdk import Asset

    with pytest.raises(ValueError, match=re.escape(reason)) as raised:
        Asset(uri=uri)
    assert "dingtalk://events/bpms_instance_change" in str(raised.value)  # the example to copy


def test_every_listed_module_and_class_imports() -> None:
    info = get_provider_info()
    modules = [
        m
        for key in ("hooks", "operators", "sensors", "triggers")
        for item in info.get(key, [])
        for m in item["python-modules"]
    ]
    for module in modules:
        importlib.import_module(module)
    for path in [c["hook-class-name"] for c in info["connection-types"]] + info.get("notifications", []):
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path


def test_providers_manager_sees_hook_and_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-provider-dingtalk" in pm.providers
    hooks = pm.hooks
    assert hooks["dingtalk"] is not None
    assert hooks["dingtalk"].hook_class_name == "airflow_provider_dingtalk.hooks.base.DingTalkBaseHook"
    behaviour = pm.field_behaviours["dingtalk"]
    assert behaviour["relabeling"]["password"].startswith("AppSecret")
    widgets = pm.connection_form_widgets
    assert "extra__dingtalk__agent_id" in widgets or any(k.endswith("agent_id") for k in widgets)
