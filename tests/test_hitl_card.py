"""The HITL card contract: values fit DingTalk's 1 KB, clicks name options, the user map is checked."""

from __future__ import annotations

import json

import pytest

from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.messages.hitl_card import (
    chosen_index,
    fit,
    out_track_id,
    parse_user_map,
    pending_params,
    ti_id_of,
)


def test_a_long_body_is_cut_to_1_kb_keeping_the_link() -> None:
    params = pending_params(
        subject="S",
        body="长" * 2000,
        options=["Approve", "Reject"],
        answerable=True,
        airflow_url="http://airflow/x",
        dag_id="d",
        run_id="r",
        task_id="t",
    )
    assert len(params["body"].encode()) <= 1024
    assert params["body"].endswith("…\n\n[Full text in Airflow](http://airflow/x)")
    assert fit("é" * 600).endswith("…") and len(fit("é" * 600).encode()) <= 1024


def test_a_card_that_cannot_be_answered_with_a_tap_has_no_buttons() -> None:
    params = pending_params(
        subject="S",
        body=None,
        options=["OK"],
        answerable=False,
        airflow_url="u",
        dag_id="d",
        run_id="r",
        task_id="t",
    )
    assert params["answerable"] == "false" and params["option_0"] == ""
    assert "answer it in Airflow" in params["status_text"]


@pytest.mark.parametrize(
    ("private", "index"),
    [
        ({"actionIds": ["option_1"], "params": {}}, 1),
        ({"actionIds": ["x"], "params": {"option_index": "3"}}, 3),
        ({"actionIds": ["option_9"]}, None),
        ({"actionIds": ["option_²"]}, None),
        ({"params": {"option_index": "-1"}}, None),
        ({}, None),
    ],
)
def test_a_click_names_its_option(private: dict[str, object], index: int | None) -> None:
    assert chosen_index(json.dumps({"cardPrivateData": private})) == index
    assert chosen_index("not json") is None


def test_only_our_cards_carry_a_task_instance_id() -> None:
    ti = "0199a0b2-1111-7222-8333-444455556666"
    assert ti_id_of(out_track_id(ti)) == ti
    assert ti_id_of("someone-else") is None and ti_id_of("airflow-hitl-x;drop") is None


def test_the_user_map_is_explicit() -> None:
    assert parse_user_map(None) == {} and parse_user_map('{"u1": "alice"}') == {"u1": "alice"}
    with pytest.raises(DingTalkValidationError, match="hitl_users"):
        parse_user_map(["u1"])
    with pytest.raises(DingTalkValidationError, match=r"hitl_users\['u1'\]"):
        parse_user_map({"u1": 5})
