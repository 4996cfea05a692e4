"""Unknown paths and wrong methods get DingTalk's answers, in each API family's style, not FastAPI's."""

from __future__ import annotations

import requests

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator


def test_old_api_unknown_path_is_errcode_404(dingtalk_emulator: DingTalkEmulator) -> None:
    answer = requests.post(f"{dingtalk_emulator.url}/topapi/message/nosuchapi", json={}, timeout=5)
    assert answer.status_code == 200  # the old API's errors come over HTTP 200
    assert (answer.json()["errcode"], answer.json()["errmsg"]) == (404, "请求的URI地址不存在")


def test_old_api_wrong_method_is_43001_or_43002(dingtalk_emulator: DingTalkEmulator) -> None:
    url = dingtalk_emulator.url
    needs_post = requests.get(f"{url}/topapi/message/corpconversation/asyncsend_v2", timeout=5)
    needs_get = requests.post(f"{url}/gettoken", timeout=5)
    assert (needs_post.status_code, needs_post.json()["errcode"]) == (200, 43002)
    assert (needs_get.status_code, needs_get.json()["errcode"]) == (200, 43001)


def test_v1_unknown_path_or_method_is_its_json_404(dingtalk_emulator: DingTalkEmulator) -> None:
    for method, path in (("POST", "/v1.0/robot/nosuch"), ("GET", "/v1.0/robot/groupMessages/send")):
        answer = requests.request(method, f"{dingtalk_emulator.url}{path}", timeout=5)
        assert answer.status_code == 404, path
        body = answer.json()
        assert body["code"] == "InvalidAction.NotFound" and body["requestid"], path
        assert "please check your url and method" in body["message"]


def test_the_control_api_keeps_plain_http_errors(dingtalk_emulator: DingTalkEmulator) -> None:
    assert requests.get(f"{dingtalk_emulator.url}/_emulator/nosuch", timeout=5).status_code == 404
