"""``dingtalk-emulator``: run the emulator from a shell, for trying DAGs by hand."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from airflow_provider_dingtalk.testing.emulator.server import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.state import DEMO_APP, EmulatedApp

READY_LINE = "Press Ctrl-C to stop."
"""Printed last, after the connections: scripts that start the tool read up to it."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dingtalk-emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8931, help="port; 0 picks a free one (default: 8931)")
    parser.add_argument(
        "--app", action="append", default=[], metavar="KEY:SECRET:AGENT_ID", help="add an app (repeatable)"
    )
    args = parser.parse_args(argv)
    apps = [DEMO_APP, *(EmulatedApp.parse(spec) for spec in args.app)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with DingTalkEmulator(host=args.host, port=args.port, apps=apps) as emulator:
        print(f"DingTalk emulator listening on {emulator.url}", flush=True)
        for app in apps:
            print(
                f"  app: AppKey={app.app_key} AppSecret={app.app_secret} agent_id={app.agent_id}", flush=True
            )
        # Every default connection (app, custom robot "default", callback receiver), app first.
        for name, value in emulator.airflow_env().items():
            print(f"  connection: {name}='{value}'", flush=True)
        print(READY_LINE, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
