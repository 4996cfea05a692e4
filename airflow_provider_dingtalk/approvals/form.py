"""Form values as a plain mapping → DingTalk's ``formComponentValues``, checked against the template.

DingTalk's "Create an approval instance" page (open.dingtalk.com, ``POST /v1.0/workflow/processInstances``)
says every value is a **string**: arrays and tables JSON-encoded, a date range named by the JSON array
of its two labels. Its "Obtain the form schema" page (``GET /v1.0/workflow/forms/schemas/processCodes``)
gives each component's type, label, whether it is required, and a select's options. A DAG author
writes ``{"Amount": 1200, "Reason": "...", "Dates": [d1, d2]}``; this module writes what DingTalk wants
and, given the schema, refuses unknown labels, missing required fields and options not in a select,
naming the field, before anything is created.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_dingtalk.exceptions import DingTalkValidationError

MAX_COMPONENTS = 150  # formComponentValues items per instance
MAX_VALUE_CHARS = 65535  # characters of one value
DEFAULT_DATE_FORMAT = "yyyy-MM-dd"

NUMERIC = frozenset({"NumberField", "MoneyField", "StarRatingField"})
JSON_LISTS = frozenset({"InnerContactField", "RelateField", "DDPhotoField", "DDAttachment"})
NOT_INPUT = frozenset({"TextNote"})  # a description shown on the form, no value


@dataclass(frozen=True, kw_only=True)
class FormComponent:
    """One component of a template's form (``schemaContent.items[]``); a table's columns in ``children``."""

    component_name: str
    id: str
    label: str
    required: bool = False
    options: tuple[str, ...] = ()
    format: str | None = None
    biz_alias: str | None = None
    children: tuple[FormComponent, ...] = ()

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> FormComponent:
        props = item.get("props") or {}
        return cls(
            component_name=str(item.get("componentName") or ""),
            id=str(props.get("id") or ""),
            label=str(props.get("label") or ""),
            required=bool(props.get("required")),
            options=_options(props.get("options")),
            format=props.get("format") or None,
            biz_alias=props.get("bizAlias") or None,
            children=tuple(cls.from_api(c) for c in item.get("children") or ()),
        )

    @property
    def range_labels(self) -> tuple[str, ...]:
        """A date range's two labels (its ``label`` is their JSON array); empty for other components."""
        if self.component_name != "DDDateRangeField" or not self.label.startswith("["):
            return ()
        try:
            labels = json.loads(self.label)
        except ValueError:
            return ()
        return tuple(str(x) for x in labels) if isinstance(labels, list) else ()

    def answers_to(self, key: str) -> bool:
        """A mapping key names this component by its label, id or bizAlias (a date range: either label)."""
        return key in (self.label, self.id, self.biz_alias) or key in self.range_labels


def _options(raw: object) -> tuple[str, ...]:
    """Option texts: plain strings, or JSON ``{"key", "value"}`` objects (older templates); both occur."""
    found = []
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, str) and item.startswith("{"):
            with contextlib.suppress(ValueError):
                item = json.loads(item)
        if isinstance(item, Mapping):
            item = item.get("value", item.get("key", ""))
        found.append(str(item))
    return tuple(found)


@dataclass(frozen=True, kw_only=True)
class FormSchema:
    """A template's form, from the form-schema API."""

    process_code: str
    name: str
    components: tuple[FormComponent, ...]

    @classmethod
    def from_api(cls, process_code: str, result: Mapping[str, Any]) -> FormSchema:
        content = result.get("schemaContent") or {}
        items = content.get("items") or ()
        return cls(
            process_code=process_code,
            name=str(result.get("name") or content.get("title") or process_code),
            components=tuple(FormComponent.from_api(i) for i in items),
        )

    def find(self, key: str) -> FormComponent | None:
        return next((c for c in self.components if c.answers_to(key)), None)


def form_component_values(
    values: Mapping[str, Any], schema: FormSchema | None = None
) -> list[dict[str, str]]:
    """DingTalk's ``formComponentValues`` for ``values``.

    :param values: ``{label: value}``; a value may be a string, number, date or datetime, a list
        (multi-select, contacts, photos, related approvals), a pair of dates (a date range) or a list
        of row mappings (a table). ``None`` means "not given".
    :param schema: the template's form; with it, values are converted as their component wants and
        checked: unknown labels, missing required fields and options not offered are refused.
    :raises DingTalkValidationError: naming the field, before anything is sent.
    """
    if not isinstance(values, Mapping):
        raise DingTalkValidationError("form_values", f"must be a mapping of label to value, not {values!r}")
    given = {str(k): v for k, v in values.items() if v is not None}
    out: list[dict[str, str]] = []
    used: set[int] = set()
    for key, value in given.items():
        field = f"form_values[{key!r}]"
        if schema is None:
            out.append({"name": key, "value": _limit(field, _plain(field, value))})
            continue
        component = schema.find(key)
        if component is None:
            known = ", ".join(repr(c.label) for c in schema.components if c.component_name not in NOT_INPUT)
            raise DingTalkValidationError(
                field,
                f"is not a field of template {schema.name!r} ({schema.process_code}); its fields: {known}",
            )
        if component.component_name in NOT_INPUT:
            raise DingTalkValidationError(field, "is a description on the form (TextNote), it takes no value")
        if id(component) in used:
            raise DingTalkValidationError(field, f"names field {component.label!r} a second time")
        used.add(id(component))
        out.append({"name": component.label, "value": _limit(field, _convert(field, component, value))})
    if schema is not None:
        for component in schema.components:
            if component.required and id(component) not in used and component.component_name not in NOT_INPUT:
                raise DingTalkValidationError(
                    f"form_values[{component.label!r}]",
                    f"is required by template {schema.name!r} ({schema.process_code}) and missing",
                )
    if len(out) > MAX_COMPONENTS:
        raise DingTalkValidationError(
            "form_values", "has too many fields", size=len(out), limit=MAX_COMPONENTS
        )
    return out


def _limit(field: str, value: str) -> str:
    if len(value) > MAX_VALUE_CHARS:
        raise DingTalkValidationError(field, "is too long", size=len(value), limit=MAX_VALUE_CHARS)
    return value


def _convert(field: str, component: FormComponent, value: Any) -> str:
    kind = component.component_name
    if kind in NUMERIC:
        return _number(field, value)
    if kind == "DDSelectField":
        return _option(field, component, value)
    if kind == "DDMultiSelectField":
        items = [value] if isinstance(value, str) else _sequence(field, value)
        return _json([_option(f"{field}[{i}]", component, v) for i, v in enumerate(items)])
    if kind == "DDDateField":
        return _date(field, value, component.format)
    if kind == "DDDateRangeField":
        pair = _sequence(field, value)
        if len(pair) != 2:
            raise DingTalkValidationError(field, "a date range takes two dates: [start, end]")
        start, end = (_date(f"{field}[{i}]", v, component.format) for i, v in enumerate(pair))
        if start > end:
            raise DingTalkValidationError(field, f"starts ({start}) after it ends ({end})")
        return _json([start, end])
    if kind == "TableField":
        return _table(field, component, value)
    if kind in JSON_LISTS:
        if isinstance(value, str):
            return value if value.startswith("[") else _json([value])
        return _json(
            [
                _plain(f"{field}[{i}]", v) if not isinstance(v, Mapping) else v
                for i, v in enumerate(_sequence(field, value))
            ]
        )
    if kind == "DepartmentField":
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
        return ",".join(str(v) for v in _sequence(field, value))
    return _plain(field, value)


def _table(field: str, component: FormComponent, rows: Any) -> str:
    encoded = []
    for r, row in enumerate(_sequence(field, rows)):
        if not isinstance(row, Mapping):
            raise DingTalkValidationError(f"{field}[{r}]", "a table row must be a mapping of column to value")
        columns = FormSchema(process_code="", name=component.label, components=component.children)
        cells = []
        given = {str(k): v for k, v in row.items() if v is not None}
        used = set()
        for key, value in given.items():
            column = columns.find(key)
            cell = f"{field}[{r}][{key!r}]"
            if column is None:
                known = ", ".join(repr(c.label) for c in component.children)
                raise DingTalkValidationError(
                    cell, f"is not a column of table {component.label!r}; its columns: {known}"
                )
            used.add(id(column))
            cells.append({"name": column.label, "value": _convert(cell, column, value)})
        for column in component.children:
            if column.required and id(column) not in used:
                raise DingTalkValidationError(
                    f"{field}[{r}][{column.label!r}]", "is a required column and missing"
                )
        encoded.append(cells)
    return _json(encoded)


def _plain(field: str, value: Any) -> str:
    """A value whose component is unknown: strings as they are, the rest in DingTalk's conventions."""
    if isinstance(value, bool):
        raise DingTalkValidationError(field, "DingTalk forms have no yes/no value: give the option text")
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return _number(field, value)
    if isinstance(value, date):
        return _date(field, value, None)
    if isinstance(value, Mapping):
        return _json(value)
    items = _sequence(field, value)
    if items and all(isinstance(row, Mapping) for row in items):  # a table: rows of {column: value}
        return _json([[{"name": str(k), "value": _plain(field, v)} for k, v in row.items()] for row in items])
    return _json([_plain(f"{field}[{i}]", v) for i, v in enumerate(items)])


def _number(field: str, value: Any) -> str:
    if isinstance(value, bool):
        raise DingTalkValidationError(field, "must be a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise DingTalkValidationError(field, f"must be a number, not {value!r}") from None
    if not number.is_finite():
        raise DingTalkValidationError(field, f"must be a finite number, not {value!r}")
    return format(number, "f")


def _option(field: str, component: FormComponent, value: Any) -> str:
    text = str(value)
    if component.options and text not in component.options:
        raise DingTalkValidationError(
            field, f"{text!r} is not an option of {component.label!r}; its options: {list(component.options)}"
        )
    return text


def _date(field: str, value: Any, fmt: str | None) -> str:
    pattern = fmt or DEFAULT_DATE_FORMAT
    py = (
        pattern.replace("yyyy", "%Y")
        .replace("MM", "%m")
        .replace("dd", "%d")
        .replace("HH", "%H")
        .replace("mm", "%M")
    )
    if isinstance(value, datetime):
        return value.strftime(py)
    if isinstance(value, date):
        return (
            value.strftime(py)
            if "%H" not in py
            else datetime(value.year, value.month, value.day).strftime(py)
        )
    if isinstance(value, str):
        try:
            datetime.strptime(value, py)
        except ValueError:
            raise DingTalkValidationError(
                field, f"{value!r} is not a date in DingTalk's format {pattern}"
            ) from None
        return value
    raise DingTalkValidationError(field, f"must be a date, a datetime or text in the format {pattern}")


def _sequence(field: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence | set | frozenset):
        raise DingTalkValidationError(field, f"must be a list, not {type(value).__name__}")
    return list(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
