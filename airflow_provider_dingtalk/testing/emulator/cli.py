"""``dingtalk-emulator``: run the emulator from a shell, for trying DAGs by hand, and read what it got.

``dingtalk-emulator [--port 8931] [--seed 0]`` serves and prints ``export AIRFLOW_CONN_…=…`` lines for
every default connection; the same seed gives the same credentials after a restart, so connections
saved in Airflow keep working. ``dingtalk-emulator inbox`` and ``dingtalk-emulator requests`` print
what a running emulator delivered and received, one JSON object a line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
import threading
import urllib.parse
import urllib.request
from typing import Any

from airflow_provider_dingtalk.testing.emulator.server import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.state import DEMO_APP, EmulatedApp

READY_LINE = "Press Ctrl-C to stop."
"""Printed last, after the connections: scripts that start the tool read up to it."""

DEFAULT_PORT = 8931
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("inbox", "requests"):
        return _read(args[0], args[1:])
    return _serve(args)


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="dingtalk-emulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="subcommands: inbox, requests (see dingtalk-emulator inbox --help)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port; 0 picks a free one (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--app", action="append", default=[], metavar="KEY:SECRET:AGENT_ID", help="add an app (repeatable)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="made-up credentials (robot token and secret, callback token and aes_key) come from this "
        "seed, so a restart with the same seed and port keeps saved connections valid (default: 0)",
    )
    args = parser.parse_args(argv)
    apps = [DEMO_APP, *(EmulatedApp.parse(spec) for spec in args.app)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with DingTalkEmulator(host=args.host, port=args.port, apps=apps, seed=args.seed) as emulator:
        print(f"# DingTalk emulator listening on {emulator.url}", flush=True)
        for app in apps:
            print(
                f"# app: AppKey={app.app_key} AppSecret={app.app_secret} agent_id={app.agent_id}", flush=True
            )
        # Every default connection (app, custom robot "default", callback receiver), app first, as
        # lines to paste into a shell as they are (the rest are comments there).
        for name, value in emulator.airflow_env().items():
            print(f"export {name}={shlex.quote(value)}", flush=True)
        print(READY_LINE, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def _read(what: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"dingtalk-emulator {what}",
        description="Print the messages a running emulator delivered, one JSON object a line."
        if what == "inbox"
        else "Print the requests a running emulator received (secrets masked), one JSON object a line.",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the emulator (default: {DEFAULT_URL})")
    # The control API's own filters: /_emulator/inbox?channel=, /_emulator/requests?path=.
    key, help_text = (
        ("channel", "only this channel: work_notification, custom_robot, app_robot_group, …")
        if what == "inbox"
        else ("path", "only requests to this path, e.g. /robot/send")
    )
    parser.add_argument(f"--{key}", help=help_text)
    args = parser.parse_args(argv)
    url = f"{args.url.rstrip('/')}/_emulator/{what}"
    if getattr(args, key):
        url += "?" + urllib.parse.urlencode({key: getattr(args, key)})
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            items: list[dict[str, Any]] = json.loads(resp.read())
    except OSError as exc:
        print(f"dingtalk-emulator {what}: no emulator answered at {args.url}: {exc}", file=sys.stderr)
        return 1
    for item in items:
        print(json.dumps(item, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
