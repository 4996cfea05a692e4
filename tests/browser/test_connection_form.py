"""The connection form in Airflow's own UI, as a user sees it.

An Airflow API server (``airflow db migrate`` + ``airflow api-server``, SQLite, simple auth manager
with everyone an admin) is started for the module and driven with Selenium in Debian's headless
Chromium. A user adds a DingTalk App connection through the form, pointed at a running emulator,
saves it and presses "Test"; the custom robot and event callback forms are checked for our labels
and password inputs. Screenshots land in ``artifacts/browser/``.

Run by ``scripts/browser_test`` (skipped in the plain pytest legs, see ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_dingtalk.get_provider_info import get_provider_info
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

selenium = pytest.importorskip("selenium", reason="pip install -e '.[browser]'")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
# Without the networking flags Chromium keeps trying Google's hosts, which this closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1300",
]
HOST_HINT = "leave empty; only for a proxy or the emulator"
WAIT = 30  # seconds for anything the UI does (first page load compiles nothing, but SQLite is slow)

# Airflow 3.3.2's UI posts ``port: Number(connection.port)`` = 0 for a connection without a port, and
# the API then refuses the test with 400 "The host or port to test differs from the stored
# connection" before any hook runs: every connection type without a port, ours included. Fixed in
# the API by apache/airflow#73298 (port 0 compares equal to blank). This page script makes the same
# one normalisation in the browser, only for /connections/test bodies, so the rest of the flow (our
# hook's test_connection in the API server process, the message shown) is still checked on 3.3.2.
PORT_ZERO_SHIM = """
(() => {
  const fix = (url, body) => {
    if (typeof body !== "string" || !String(url).endsWith("/api/v2/connections/test")) return body;
    const data = JSON.parse(body);
    if (data.port === 0) data.port = null;
    return JSON.stringify(data);
  };
  const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    this.__dingtalkUrl = url;
    return open.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (body) { return send.call(this, fix(this.__dingtalkUrl, body)); };
  const originalFetch = window.fetch;
  window.fetch = (input, init) => {
    const url = typeof input === "string" ? input : input.url;
    if (init && init.body) init = {...init, body: fix(url, init.body)};
    return originalFetch(input, init);
  };
})();
"""


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow-core")


# -- Airflow API server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def airflow_ui() -> Iterator[str]:
    """Base URL of a freshly migrated Airflow API server (UI + REST API), stopped with its process group."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="airflow-ui-"))
    (home / "dags").mkdir()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # Only what this server needs: the pytest process's own AIRFLOW__* settings (unit-test mode,
    # the example dags folder) must not leak into it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=base,
    )
    airflow = [sys.executable, "-m", "airflow"]
    migrate = subprocess.run(
        [*airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    log_path = ARTIFACTS / "api-server.log"
    with log_path.open("wb") as log:
        # Its own session (setsid): stopping the group stops uvicorn's workers too.
        server = subprocess.Popen(
            [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"api-server exited early, see {log_path}"
            try:
                if _get_json(base + "/api/v2/monitor/health")["metadatabase"]["status"] == "healthy":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"api-server not healthy after 120 s, see {log_path}"
            time.sleep(0.5)
        yield base
    finally:
        # SIGINT to the group lets uvicorn shut down cleanly; the PID last, in case it lingers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.kill()
            server.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


# -- Browser --------------------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Debian Chromium; the driver is given explicitly so Selenium Manager downloads nothing."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), f"{path} missing: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    # The network log lets the test read what the UI posted and what the API answered.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: webdriver.Chrome, css: str, *, root: Any = None, timeout: float = WAIT) -> WebElement:
    scope = root or driver

    def find(_: Any) -> WebElement | bool:
        found = [e for e in scope.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        return found[0] if found else False

    element: WebElement = WebDriverWait(driver, timeout).until(find, f"nothing matches {css!r}")
    return element


def _button(driver: webdriver.Chrome, root: Any, text: str) -> WebElement:
    def find(_: Any) -> WebElement | bool:
        for b in root.find_elements(By.CSS_SELECTOR, "button"):
            if b.is_displayed() and b.text.strip() == text:
                return b
        return False

    element: WebElement = WebDriverWait(driver, WAIT).until(find, f"no button {text!r}")
    return element


def _open_extra_fields(driver: webdriver.Chrome, dialog: WebElement, first: str) -> WebElement:
    """Open the "Extra Fields" section (the standard one folds away); return its input named ``first``."""
    _button(driver, dialog, "Extra Fields").click()
    host = dialog.find_element(By.NAME, "host")
    WebDriverWait(driver, WAIT).until(lambda _: not host.is_displayed(), "standard fields still open")
    return _wait(driver, f"input[name={first}]", root=dialog)


def _type(driver: webdriver.Chrome, element: WebElement, text: str) -> None:
    """Type ``text`` into ``element`` in short runs, each awaited, so that the input holds all of it.

    Typed in one go, the extra-fields form dropped a keystroke of a long value every time (a
    67-character secret was saved with 66, one missing after the 51st): the form re-renders while
    keys arrive. A person types slower; the test waits for each run instead.
    """
    for end in range(10, len(text) + 10, 10):
        element.send_keys(text[end - 10 : end])
        WebDriverWait(driver, WAIT).until(
            lambda _, want=text[:end]: element.get_attribute("value") == want,
            f"{element.get_attribute('name')} lost keystrokes",
        )


def _shot(driver: webdriver.Chrome, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _open_add_form(driver: webdriver.Chrome, base: str, type_name: str) -> WebElement:
    """The "Add Connection" dialog with ``type_name`` chosen in the connection-type picker."""
    driver.get(base + "/connections")
    _button(driver, driver, "Add Connection").click()
    dialog = _wait(driver, "[role=dialog]")
    picker = _wait(driver, "input[role=combobox]", root=dialog)
    picker.send_keys(type_name)
    option = _wait(driver, "[role=option]")
    assert option.text == type_name, f"the type picker offers {option.text!r} for {type_name!r}"
    picker.send_keys(Keys.ENTER)
    _wait(driver, "input[name=host]", root=dialog)  # the standard fields of the chosen type
    return dialog


def _fields(dialog: WebElement) -> dict[str, WebElement]:
    """Label text → input, for every field of the form (open or collapsed section)."""
    fields = {}
    for group in dialog.find_elements(By.CSS_SELECTOR, "[data-part=root][role=group]"):
        labels = group.find_elements(By.CSS_SELECTOR, "label[data-part=label]")
        inputs = group.find_elements(By.CSS_SELECTOR, "input[name], textarea[name]")
        if labels and inputs:
            text = (labels[0].get_attribute("textContent") or "").replace("*", "").strip()
            fields[text] = inputs[0]
    return fields


def _layout(fields: dict[str, WebElement]) -> dict[str, tuple[str, str]]:
    """Label → (input name, input type), the part of the form a user reads."""
    return {
        label: (el.get_attribute("name") or "", el.get_attribute("type") or "")
        for label, el in fields.items()
    }


def _declared_extra_labels(conn_type: str) -> dict[str, str]:
    entry = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type)
    return {name: spec["label"] for name, spec in entry["conn-fields"].items()}


def _read_network(driver: webdriver.Chrome, url_suffix: str, seen: dict[str, dict[str, Any]]) -> None:
    """Add the POSTs to ``url_suffix`` in the browser's network log to ``seen`` (request id → posted
    body, status, response body). The log is drained on every read, hence the dict kept across reads."""
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            request = params["request"]
            if request["url"].endswith(url_suffix) and request["method"] == "POST":
                seen[params["requestId"]] = {"body": json.loads(request.get("postData") or "null")}
        elif message["method"] == "Network.responseReceived" and params["requestId"] in seen:
            seen[params["requestId"]]["status"] = params["response"]["status"]
        elif message["method"] == "Network.loadingFinished" and params["requestId"] in seen:
            got = driver.execute_cdp_cmd("Network.getResponseBody", {"requestId": params["requestId"]})
            seen[params["requestId"]]["response"] = json.loads(got["body"])


def _press_test(driver: webdriver.Chrome, conn_id: str) -> tuple[str, dict[str, Any]]:
    """Press the row's "Test Connection" button; return the toast's text and the API exchange."""
    row = WebDriverWait(driver, WAIT).until(
        lambda d: next((r for r in d.find_elements(By.CSS_SELECTOR, "tr") if conn_id in r.text), False),
        f"no row for {conn_id}",
    )
    driver.get_log("performance")  # drop what came before
    row.find_element(By.CSS_SELECTOR, "button[aria-label='Test Connection']").click()

    def test_toast(d: webdriver.Chrome) -> str | bool:
        toasts = [t.text for t in d.find_elements(By.CSS_SELECTOR, "[data-scope=toast][data-part=root]")]
        return next((t for t in toasts if t.startswith("Test Connection")), False)

    toast: str = WebDriverWait(driver, WAIT).until(test_toast, "no Test Connection toast")
    seen: dict[str, dict[str, Any]] = {}

    def answered(d: webdriver.Chrome) -> list[dict[str, Any]] | bool:
        _read_network(d, "/api/v2/connections/test", seen)
        return [x for x in seen.values() if "response" in x] or False

    exchanges = WebDriverWait(driver, WAIT).until(answered, "the UI did not call /api/v2/connections/test")
    assert len(exchanges) == 1, exchanges
    return toast, exchanges[0]


# -- Tests ----------------------------------------------------------------------------------------


def test_dingtalk_app_connection_through_the_form(airflow_ui: str, browser: webdriver.Chrome) -> None:
    with DingTalkEmulator() as emulator:
        app = emulator.app
        dialog = _open_add_form(browser, airflow_ui, "DingTalk App")
        fields = _fields(dialog)
        layout = _layout(fields)
        # Our relabelling of the standard fields, the secret as a password input, unused ones hidden.
        assert layout["Host"] == ("host", "text")
        assert layout["AppKey (Client ID)"] == ("login", "text")
        assert layout["AppSecret (Client Secret)"] == ("password", "password")
        # Agent ID, needed for every work notification, is a standard field (Schema relabelled),
        # shown open with the credentials, not in the collapsed Extra Fields.
        assert layout["Agent ID"] == ("schema", "text")
        assert fields["Agent ID"].is_displayed()
        assert "needed for work notifications" in (fields["Agent ID"].get_attribute("placeholder") or "")
        assert {"Login", "Password", "Schema", "Port"}.isdisjoint(layout)
        assert not dialog.find_elements(By.CSS_SELECTOR, "input[name=port]")
        assert fields["Host"].get_attribute("placeholder") == HOST_HINT
        # Every extra field declared in provider info, under its label.
        for name, label in _declared_extra_labels("dingtalk").items():
            assert layout[label][0] == f"element_{name}", (label, layout)
        assert "element_agent_id" not in {name for name, _ in layout.values()}
        assert layout["Outbound proxy"] == ("element_proxy", "text")

        dialog.find_element(By.NAME, "connection_id").send_keys("dingtalk_ui")
        fields["Host"].send_keys(emulator.url)
        fields["AppKey (Client ID)"].send_keys(app.app_key)
        fields["AppSecret (Client Secret)"].send_keys(app.app_secret)
        fields["Agent ID"].send_keys(str(app.agent_id))
        _shot(browser, "dingtalk-app-1-standard-fields")

        _type(browser, _open_extra_fields(browser, dialog, "element_api_host"), emulator.url)
        _shot(browser, "dingtalk-app-2-extra-fields")
        # Airflow's own Extra Fields JSON box is always there (a provider cannot hide it): it holds
        # what the fields above hold.
        _button(browser, dialog, "Extra Fields JSON").click()
        WebDriverWait(browser, WAIT).until(
            lambda _: emulator.url in dialog.text and "api_host" in dialog.text, "JSON box lacks api_host"
        )
        _shot(browser, "dingtalk-app-2b-extra-fields-json")

        _button(browser, dialog, "Save").click()
        WebDriverWait(browser, WAIT).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "[role=dialog]"))
        saved = _get_json(airflow_ui + "/api/v2/connections/dingtalk_ui")
        assert (saved["conn_type"], saved["host"], saved["login"]) == ("dingtalk", emulator.url, app.app_key)
        assert saved["schema"] == str(app.agent_id)
        assert saved["password"] == "***"  # stored, and masked by Airflow
        extra = json.loads(saved["extra"])
        assert extra["api_host"] == emulator.url and "agent_id" not in extra
        assert (extra["connect_timeout"], extra["read_timeout"]) == (5, 15)  # the declared defaults
        _shot(browser, "dingtalk-app-3-saved")
        assert emulator.calls("/gettoken") == 0  # saving talks to nobody

        toast, exchange = _press_test(browser, "dingtalk_ui")
        if _airflow_version() == "3.3.2":
            # Airflow's own bug (see PORT_ZERO_SHIM): refused before any hook runs.
            _shot(browser, "dingtalk-app-4-test-refused-by-airflow-3.3.2")
            assert exchange["body"]["port"] == 0
            assert exchange["status"] == 400
            assert "host or port to test differs" in exchange["response"]["detail"]
            assert "Failed" in toast
            assert emulator.calls("/gettoken") == 0
            # Again, with the request Airflow's fix accepts.
            browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PORT_ZERO_SHIM})
            browser.get(airflow_ui + "/connections")
            toast, exchange = _press_test(browser, "dingtalk_ui")

        _shot(browser, "dingtalk-app-5-test-succeeded")
        # Our hook ran inside the API server process and fetched a real token from the emulator.
        assert exchange["status"] == 200, exchange
        assert exchange["response"] == {
            "status": True,
            "message": f"Connection works: DingTalk issued an access token for app {app.app_key}.",
        }
        assert exchange["response"]["message"] in toast
        assert emulator.calls("/gettoken") == 1
        token_call = emulator.requests("/gettoken")[0]
        assert app.app_secret not in repr(token_call)  # the emulator's log masks the secret


def test_custom_robot_connection_through_the_form(airflow_ui: str, browser: webdriver.Chrome) -> None:
    dialog = _open_add_form(browser, airflow_ui, "DingTalk Custom Robot")
    fields = _fields(dialog)
    layout = _layout(fields)
    assert layout["Host"] == ("host", "text")
    assert fields["Host"].get_attribute("placeholder") == HOST_HINT
    assert layout["Robot access token (or webhook URL)"] == ("password", "password")
    assert not dialog.find_elements(
        By.CSS_SELECTOR, "input[name=login], input[name=port], input[name=schema]"
    )
    for name, label in _declared_extra_labels("dingtalkcustomrobot").items():
        assert layout[label][0] == f"element_{name}", (label, layout)
    assert layout["Signing secret"] == ("element_secret", "password")

    dialog.find_element(By.NAME, "connection_id").send_keys("dingtalk_robot_ui")
    fields["Robot access token (or webhook URL)"].send_keys("0123456789abcdef" * 4)
    _shot(browser, "dingtalk-webhook-1-standard-fields")
    _type(browser, _open_extra_fields(browser, dialog, "element_secret"), "SEC" + "ab" * 32)
    _shot(browser, "dingtalk-webhook-2-extra-fields")
    _button(browser, dialog, "Save").click()
    WebDriverWait(browser, WAIT).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "[role=dialog]"))
    saved = _get_json(airflow_ui + "/api/v2/connections/dingtalk_robot_ui")
    assert saved["conn_type"] == "dingtalkcustomrobot"
    assert saved["password"] == "***"
    assert json.loads(saved["extra"])["secret"] == "***"  # a secret to Airflow too: masked in the API
    _shot(browser, "dingtalk-webhook-3-saved")

    # The Test button means something here too: a check made in the API server, sending nothing.
    if _airflow_version() == "3.3.2":  # Airflow's port-0 bug, see PORT_ZERO_SHIM
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PORT_ZERO_SHIM})
        browser.get(airflow_ui + "/connections")
    toast, exchange = _press_test(browser, "dingtalk_robot_ui")
    _shot(browser, "dingtalk-webhook-4-test")
    assert exchange["status"] == 200, exchange
    assert exchange["response"]["status"] is True, exchange["response"]["message"]
    message = exchange["response"]["message"]
    assert message.startswith("Checked here only, nothing sent: the access token and signing secret")
    assert message in toast


def test_event_callback_connection_form(airflow_ui: str, browser: webdriver.Chrome) -> None:
    dialog = _open_add_form(browser, airflow_ui, "DingTalk Event Callback")
    layout = _layout(_fields(dialog))
    assert layout["Callback URL"] == ("host", "text")
    assert layout["Receiver id (corpId or AppKey)"] == ("login", "text")
    assert layout["aes_key (43 characters)"] == ("password", "password")
    for name, label in _declared_extra_labels("dingtalkcallback").items():
        assert layout[label][0] == f"element_{name}", (label, layout)
    assert layout["Token"] == ("element_token", "password")
    _shot(browser, "dingtalk-callback-1-standard-fields")
    _open_extra_fields(browser, dialog, "element_token")
    _shot(browser, "dingtalk-callback-2-extra-fields")
