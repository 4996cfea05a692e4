"""The organisation's address book: who exists (work notifications report unknown users as invalid)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request

from airflow_provider_dingtalk.testing.emulator.http import OapiError, oapi_app, ok, read_params, state_of
from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp, EmulatorState

router = APIRouter()


@dataclass
class Directory:
    """Members are ``user<N>`` (N up to 6 digits) plus any added by tests; departments 1–1000.

    Department ``N`` has one member, ``user<N>``, unless a test sets ``department_members[N]``.
    """

    pattern: re.Pattern[str] = re.compile(r"user\d{1,6}")
    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    departments: range = range(1, 1001)
    department_members: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def has_user(self, userid: str) -> bool:
        return userid not in self.removed and (userid in self.added or bool(self.pattern.fullmatch(userid)))

    def has_department(self, dept_id: int | str) -> bool:
        return str(dept_id).isdigit() and int(dept_id) in self.departments

    def members(self, dept_id: int) -> tuple[str, ...]:
        return self.department_members.get(dept_id, (f"user{dept_id}",))


def directory(state: EmulatorState) -> Directory:
    return state.store("directory", Directory)


@router.post("/topapi/v2/user/get")
async def user_get(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    userid = str((await read_params(request)).get("userid") or "")
    if not directory(state).has_user(userid):
        raise OapiError(60121, "找不到该用户")
    return ok(state, result={"userid": userid, "name": f"Emulated {userid}", "active": True})
