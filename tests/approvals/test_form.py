"""Form values → formComponentValues, and the checks against the template's schema."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from airflow_provider_dingtalk.approvals import FormSchema, form_component_values
from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import demo_form

SCHEMA = FormSchema.from_api("PROC-X", {"name": "Data export", "schemaContent": {"items": demo_form()}})


def test_plain_mapping_becomes_strings_named_as_dingtalk_wants() -> None:
    values = form_component_values(
        {"Dataset": "orders", "Rows": 1200, "Destination": "S3", "Start": [date(2026, 1, 1), "2026-01-31"]},
        SCHEMA,
    )
    assert values == [
        {"name": "Dataset", "value": "orders"},
        {"name": "Rows", "value": "1200"},
        {"name": "Destination", "value": "S3"},
        {"name": '["Start","End"]', "value": '["2026-01-01","2026-01-31"]'},
    ]


def test_without_a_schema_lists_and_tables_are_json_and_dates_dingtalks_format() -> None:
    values = form_component_values(
        {
            "Tags": ["a", "b"],
            "Day": date(2026, 2, 3),
            "At": datetime(2026, 2, 3, 4, 5),
            "Items": [{"Name": "x", "Qty": 2}],
        }
    )
    got = {v["name"]: v["value"] for v in values}
    assert json.loads(got["Tags"]) == ["a", "b"]
    assert got["Day"] == "2026-02-03" and got["At"] == "2026-02-03"
    assert json.loads(got["Items"]) == [[{"name": "Name", "value": "x"}, {"name": "Qty", "value": "2"}]]


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        (
            {"Dataset": "d", "Rows": 1, "Destination": "S3", "Colour": "red"},
            "form_values['Colour']",
            "not a field",
        ),
        ({"Dataset": "d", "Destination": "S3"}, "form_values['Rows']", "required"),
        ({"Dataset": "d", "Rows": 1, "Destination": "Mars"}, "form_values['Destination']", "not an option"),
        ({"Dataset": "d", "Rows": "many", "Destination": "S3"}, "form_values['Rows']", "number"),
        (
            {"Dataset": "d", "Rows": 1, "Destination": "S3", "Start": ["2026-02-01", "2026-01-01"]},
            "form_values['Start']",
            "after it ends",
        ),
        (
            {"Dataset": "d", "Rows": 1, "Destination": "S3", "Exports are logged.": "x"},
            "form_values['Exports are logged.']",
            "TextNote",
        ),
        ({"Dataset": "x" * 65536, "Rows": 1, "Destination": "S3"}, "form_values['Dataset']", "too long"),
    ],
)
def test_bad_values_are_refused_naming_the_field(values: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(DingTalkValidationError) as err:
        form_component_values(values, SCHEMA)
    assert err.value.field == field and words in str(err.value)


def test_options_given_as_json_objects_are_read_too() -> None:
    schema = FormSchema.from_api(
        "P",
        {
            "schemaContent": {
                "items": [
                    {
                        "componentName": "DDSelectField",
                        "props": {"label": "L", "options": ['{"key":"k1","value":"One"}']},
                    }
                ]
            }
        },
    )
    assert form_component_values({"L": "One"}, schema) == [{"name": "L", "value": "One"}]
    with pytest.raises(DingTalkValidationError):
        form_component_values({"L": "k2"}, schema)
