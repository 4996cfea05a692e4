"""The one JSON encoding the provider sends, so that byte limits are measured on what goes out."""

from __future__ import annotations

import json
from typing import Any


def dumps(obj: Any) -> str:
    """Compact JSON with UTF-8 text kept as is: the smallest form, and the one DingTalk's limits count."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))
