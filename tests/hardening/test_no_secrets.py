"""No secret anywhere: the whole example set at DEBUG logging, every place a secret could end up scanned.

Secrets: the AppSecret, every access token the emulator issued, the custom robot's token and
signing secret, every aes_key and callback token (the emulator's ``known_secrets()`` holds all it
learned, registrations included, plus the callback connection's own values).

Places: log records (caplog, root at DEBUG with requests/urllib3), the process's stdout/stderr
(where Airflow's structlog writes task logs and tracebacks), log files under ``AIRFLOW_HOME``,
XComs and rendered template fields of the runs (from the metadata DB), asset events, the emulator's
request log (query, body, headers and response of every record) and its inbox.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import DEMO_PROCESS_CODE

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
EXPECT_FAILED = "demo:expect-failed"
# A Deadline Alert needs the scheduler and a triggerer (dag.test() of one fails in Airflow 3.3.2's
# deadline_alert lookup); tests/production runs it on real services.
NEEDS_SCHEDULER = "demo:needs-scheduler"
# Airflow's own leak, not the provider's: under dag.test() the in-process supervisor
# (InProcessSupervisorComms.send, airflow/sdk/execution_time/supervisor.py) logs every message from the
# task at DEBUG, MaskSecret included, i.e. the very value being registered for masking. The real
# supervisor logs "(body omitted)" for MaskSecret. Those lines are counted and reported, not failed on.
AIRFLOW_DAG_TEST_MASK_LINE = re.compile(
    r"\[debug +\] Sending request +loc=supervisor\.py:\d+ msg=MaskSecret\("
)
APPROVAL = {
    "EventType": "bpms_instance_change",
    "processInstanceId": "secret-scan-1",
    "type": "finish",
    "result": "agree",
}


def find_secrets(texts: Iterable[tuple[str, str]], secrets: Iterable[str]) -> Counter[str]:
    """How often any secret occurs, per source; the secret itself is never part of the result."""
    found: Counter[str] = Counter()
    wanted = [s for s in set(secrets) if s]
    for source, text in texts:
        for secret in wanted:
            found[source] += text.count(secret)
    return +found


def _where(texts: Iterable[tuple[str, str]], secrets: list[str], limit: int = 10) -> Iterator[str]:
    """The first lines holding a secret, each secret shown as <secret N> so the failure leaks nothing."""
    for source, text in texts:
        hits = [i for i, secret in enumerate(secrets) if secret in text]
        if hits:
            for i in hits:
                text = text.replace(secrets[i], f"<secret {i}>")
            yield f"{source}: {text[:500]}"
            limit -= 1
            if not limit:
                return


def test_the_scanner_finds_a_planted_secret() -> None:
    texts = [("log", "GET /gettoken?appsecret=s3cr3t-value-42 200"), ("xcom", "nothing here")]
    assert find_secrets(texts, ["s3cr3t-value-42", "absent"]) == Counter({"log": 1})
    assert list(_where(texts, ["s3cr3t-value-42"])) == ["log: GET /gettoken?appsecret=<secret 0> 200"]


def _all_secrets(emulator: DingTalkEmulator, env: dict[str, str]) -> list[str]:
    state = emulator.state
    secrets = set(state.known_secrets()) | set(state.tokens)
    secrets |= {app.app_secret for app in state.apps.values()}
    for name, raw in env.items():
        conn = json.loads(raw)
        secrets.add(conn.get("password") or "")
        extra = conn.get("extra") or {}
        secrets |= {str(extra[k]) for k in ("token", "secret", "aes_key") if extra.get(k)}
        assert conn.get("password"), f"{name} has no secret to look for"
    return sorted(s for s in secrets if s)


def _db_texts(run_ids: set[str]) -> Iterator[tuple[str, str]]:
    from airflow.models.asset import AssetEvent
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        for xcom in session.scalars(select(XComModel).where(XComModel.run_id.in_(run_ids))):
            yield "xcom", f"{xcom.key} {json.dumps(xcom.value, default=str)}"
        rtif = RenderedTaskInstanceFields
        for row in session.scalars(select(rtif).where(rtif.run_id.in_(run_ids))):
            yield "rendered_fields", json.dumps(row.rendered_fields, default=str)
        for event in session.scalars(select(AssetEvent)):
            yield "asset_event", json.dumps(event.extra, default=str)


def _emulator_texts(emulator: DingTalkEmulator) -> Iterator[tuple[str, str]]:
    for record in emulator.requests():
        parts = (record.path, record.query, record.body, record.headers, record.response)
        yield "emulator_request", json.dumps(parts, default=str, ensure_ascii=False)
    for item in emulator.inbox():
        yield "inbox", json.dumps([item.target, item.message, item.meta], default=str, ensure_ascii=False)


def _log_files() -> Iterator[tuple[str, str]]:
    for path in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log"):
        yield "log_file", path.read_text(errors="replace")


def _run_examples() -> tuple[dict[str, str], set[str]]:
    """Every example DAG under dag.test(), as scripts/run_demo.py runs them."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert not bag.import_errors
    outcomes, run_ids = {}, set()
    for dag_id in sorted(bag.dags):
        dag = bag.dags[dag_id]
        if NEEDS_SCHEDULER in dag.tags:
            continue
        run = dag.test()
        run_ids.add(run.run_id)
        outcomes[dag_id] = str(getattr(run.state, "value", run.state))
        expected = "failed" if EXPECT_FAILED in dag.tags else "success"
        assert outcomes[dag_id] == expected, outcomes
    return outcomes, run_ids


@pytest.mark.usefixtures("dingtalk_airflow_db")
def test_example_dags_at_debug_leak_no_secret(
    dingtalk_emulator: DingTalkEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.configuration import conf
    from airflow.sdk.log import configure_logging

    env = dingtalk_emulator.airflow_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    dingtalk_emulator.auto_decide(DEMO_PROCESS_CODE, after=0.5)  # the approval example's data owner agrees
    level = conf.get("logging", "logging_level")
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_LEVEL", "DEBUG")
    configure_logging(log_level="DEBUG")  # structlog filters by its own level: task logs at DEBUG
    try:
        # configure_logging replaced the root handlers: caplog's goes back in, every logger at DEBUG.
        logging.getLogger().addHandler(caplog.handler)
        caplog.set_level(logging.DEBUG)
        for name in ("requests", "urllib3", "airflow_provider_dingtalk", "airflow"):
            caplog.set_level(logging.DEBUG, logger=name)
        outcomes, run_ids = _run_examples()
        assert dingtalk_emulator.push_event(APPROVAL)  # the receiver's side: verify, decrypt, asset event
    finally:
        logging.getLogger().removeHandler(caplog.handler)
        configure_logging(log_level=level)

    captured = capfd.readouterr()
    records = list(caplog.records)
    texts: list[tuple[str, str]] = [
        ("log_record", f"{r.name} {r.getMessage()} {r.exc_text or ''}") for r in records
    ]
    texts += [
        ("log_record_exception", logging.Formatter().formatException(r.exc_info))
        for r in records
        if r.exc_info
    ]
    texts += [
        ("airflow_dag_test_mask_secret" if AIRFLOW_DAG_TEST_MASK_LINE.search(line) else "stdout", line)
        for line in captured.out.splitlines()
    ]
    texts += [("stderr", line) for line in captured.err.splitlines()]
    texts += list(_log_files())
    texts += list(_db_texts(run_ids))
    texts += list(_emulator_texts(dingtalk_emulator))
    secrets = _all_secrets(dingtalk_emulator, env)
    scanned = Counter(source for source, _ in texts)
    print(f"\nscanned {dict(scanned)} for {len(secrets)} secrets; runs {outcomes}")

    # The scan saw what it claims to: DEBUG lines of urllib3, each kind of record, every secret kind.
    everything = "\n".join(text for _, text in texts)
    assert any(r.name.startswith("urllib3") and r.levelno == logging.DEBUG for r in records)
    assert "[debug    ] Starting new HTTP connection" in everything  # structlog's stdout at DEBUG
    assert "/gettoken?appkey=" in everything  # the request line that carries the AppSecret was logged
    for source in ("xcom", "rendered_fields", "emulator_request", "inbox", "asset_event"):
        assert scanned[source] > 0, f"nothing to scan in {source}: {dict(scanned)}"
    assert len(dingtalk_emulator.state.tokens) >= 1 and len(secrets) >= 6, len(secrets)

    leaks = find_secrets(texts, secrets)
    upstream = leaks.pop("airflow_dag_test_mask_secret", 0)
    print(
        f"Airflow's dag.test() MaskSecret debug lines holding a secret (upstream, not failed on): {upstream}"
    )
    assert not leaks, f"secrets found in {dict(leaks)} (scanned {dict(scanned)}):\n" + "\n".join(
        _where([t for t in texts if t[0] != "airflow_dag_test_mask_secret"], secrets)
    )
