"""Media upload: ``POST /media/upload?type=image|voice|file``, multipart field ``media``.

Limits are the old documented ones (image 1 MB, voice 2 MB, file 10 MB: DingTalk's server API doc
source, github.com/ddtalk/dingTalkDoc ``source/includes/_server.md``). Uploaded files are kept in
:class:`MediaStore` by media id so tests can check what arrived. Errors: 40004 (不合法的媒体文件类型)
for an unknown type, 40005 (不合法的文件类型) for a missing ``media`` part, 40006 (不合法的文件大小)
for an empty or oversized file — codes from DingTalk's global error table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request

from airflow_provider_dingtalk.testing.emulator.http import OapiError, oapi_app, ok, state_of
from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp, EmulatorState

router = APIRouter()

MAX_BYTES = {"image": 1 * 1024 * 1024, "voice": 2 * 1024 * 1024, "file": 10 * 1024 * 1024}


@dataclass(frozen=True, kw_only=True)
class Upload:
    media_type: str
    filename: str
    content: bytes
    app_key: str


@dataclass
class MediaStore:
    uploads: dict[str, Upload] = field(default_factory=dict)


def media(state: EmulatorState) -> MediaStore:
    return state.store("media", MediaStore)


@router.post("/media/upload")
async def upload(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    media_type = request.query_params.get("type", "")
    if media_type not in MAX_BYTES:
        raise OapiError(40004, "不合法的媒体文件类型")
    form = await request.form()
    part = form.get("media")
    if part is None or isinstance(part, str):
        raise OapiError(40005, "不合法的文件类型")
    content = await part.read()
    if not content or len(content) > MAX_BYTES[media_type]:
        raise OapiError(40006, "不合法的文件大小")
    media_id = f"@lADO{state.random_hex(16)}"
    with state.lock:
        media(state).uploads[media_id] = Upload(
            media_type=media_type, filename=part.filename or "", content=content, app_key=app.app_key
        )
    return ok(state, type=media_type, media_id=media_id, created_at=int(state.clock.now() * 1000))
