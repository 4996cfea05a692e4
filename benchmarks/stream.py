"""Stream mode reliability: latency, disconnects and TCP drops, a killed triggerer, memory.

Everything runs through ``DingTalkStreamEventTrigger.run()`` against the emulator's Stream gateway
on loopback, consumed the way the triggerer consumes it (pull the next event as soon as one arrives).
The emulator runs in a thread of this process, so the figures include its share of the GIL.

    python benchmarks/stream.py [--events 10000] [--check]

1. latency: 1,000 events pushed one at a time, push → ``TriggerEvent``, p50/p95;
2. 10,000 events while the gateway sends ``disconnect`` every 500 events and drops the TCP
   connection without a frame twice: lost and duplicate asset events (both must be 0);
3. a "triggerer" process running the trigger is killed (SIGKILL) mid-stream and started again:
   events pushed meanwhile must arrive after the restart, none twice;
4. memory: traced Python memory after 1,000 events and every 10,000: past the 10,000 ``eventId``
   values the trigger remembers, it must stay flat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

FAST = {"keepalive_interval": 2.0, "keepalive_timeout": 2.0}
EVENT = {"EventType": "bpms_instance_change", "processCode": "PROC-B", "type": "finish", "result": "agree"}


class Pull:
    """The trigger's run() pulled without pause, each payload's arrival time noted."""

    def __init__(self, **kwargs: Any) -> None:
        from airflow_provider_dingtalk.triggers.stream import DingTalkStreamEventTrigger

        self.arrived: dict[str, float] = {}
        self.count = 0
        self.changed = asyncio.Event()
        self.run = DingTalkStreamEventTrigger(event_types=["bpms_instance_change"], **FAST, **kwargs).run()
        self.task = asyncio.ensure_future(self._pull())

    async def _pull(self) -> None:
        async for event in self.run:
            self.count += 1
            self.arrived.setdefault(event.payload["eventId"], time.perf_counter())
            self.changed.set()

    async def until(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count:
            self.changed.clear()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.count} of {count} events after {timeout} s")
            with contextlib.suppress(TimeoutError):  # look at the deadline at least once a second
                await asyncio.wait_for(self.changed.wait(), 1.0)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.run.aclose()


async def latency(emulator: DingTalkEmulator, events: int) -> tuple[float, float]:
    pull = Pull()
    await asyncio.to_thread(emulator.stream.wait_for_connections)
    samples = []
    for n in range(events):
        start = time.perf_counter()
        event_id = await asyncio.to_thread(emulator.push_event, {**EVENT, "n": n}, via="stream")
        await pull.until(n + 1, 10)
        samples.append(pull.arrived[event_id] - start)
    await pull.close()
    quantiles = statistics.quantiles(samples, n=20)
    return statistics.median(samples) * 1000, quantiles[18] * 1000


async def storm(emulator: DingTalkEmulator, events: int) -> dict[str, Any]:
    tracemalloc.start()
    pull = Pull()
    await asyncio.to_thread(emulator.stream.wait_for_connections)
    drops_at = {events * 3 // 10, events * 7 // 10}
    pushed: list[str] = []
    memory: dict[str, int] = {}

    def push_all() -> None:
        for n in range(events):
            pushed.append(emulator.push_event({**EVENT, "n": n}, via="stream"))
            if n and n % 500 == 0:
                emulator.stream.disconnect()
            if n in drops_at:
                emulator.stream.drop()
            if n % 50 == 0:
                time.sleep(0.01)  # DingTalk does not push 10,000 events in one burst either

    pusher = threading.Thread(target=push_all)
    pusher.start()
    # Past the de-dup bound (remember=10,000) the memory must stay flat: sample it every 10,000.
    for mark in [min(1000, events), *range(10_000, events, 10_000)]:
        await pull.until(mark, 300)
        memory[f"after {mark:,}"] = _trigger_memory()
    while pusher.is_alive():
        await asyncio.sleep(0.1)
    await asyncio.to_thread(emulator.stream.wait_until_acked, timeout=300)
    memory[f"after {events:,}"] = _trigger_memory()
    await pull.close()
    tracemalloc.stop()
    unique = set(pull.arrived)
    return {
        "pushed": len(pushed),
        "asset events": pull.count,
        "lost": len(set(pushed) - unique),
        "duplicates": pull.count - len(unique),
        "memory": memory,
    }


def _trigger_memory() -> int:
    """Bytes held by objects allocated in the trigger, the client and websockets (not the emulator's
    own logs, which keep every request and ack, nor this script's bookkeeping)."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(True, "*/airflow_provider_dingtalk/stream/*"),
            tracemalloc.Filter(True, "*/airflow_provider_dingtalk/triggers/stream.py"),
            tracemalloc.Filter(True, "*/websockets/*"),
        ]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


_TRIGGERER = """
import asyncio, os, sys
os.environ["AIRFLOW_CONN_DINGTALK_DEFAULT"] = sys.argv[1]
from airflow_provider_dingtalk.triggers.stream import DingTalkStreamEventTrigger

async def main():
    out = open(sys.argv[2], "a", buffering=1)
    trigger = DingTalkStreamEventTrigger(event_types=["bpms_instance_change"], keepalive_interval=1,
                                         keepalive_timeout=1)
    async for event in trigger.run():
        out.write(event.payload["eventId"] + "\\n")  # "handed to Airflow": written before the next pull

asyncio.run(main())
"""


def restart(emulator: DingTalkEmulator, events: int) -> dict[str, int]:
    out = Path(tempfile.mkdtemp()) / "events.txt"
    out.touch()

    def start() -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-c", _TRIGGERER, emulator.connection_json(), str(out)]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    proc = start()
    emulator.stream.wait_for_connections(timeout=60)
    pushed = [emulator.push_event({**EVENT, "n": n}, via="stream") for n in range(events // 2)]
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: some events arrived, some are on the way
    proc.wait()
    pushed += [emulator.push_event({**EVENT, "n": n}, via="stream") for n in range(events // 2, events)]
    proc = start()
    try:
        emulator.stream.wait_until_acked(timeout=120)
        time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    seen = out.read_text().split()
    lost = len(set(pushed) - set(seen))
    return {"pushed": len(pushed), "lost": lost, "duplicates": len(seen) - len(set(seen))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--check", action="store_true", help="exit 1 on a FAIL")
    args = parser.parse_args()
    with DingTalkEmulator() as emulator:
        os.environ["AIRFLOW_CONN_DINGTALK_DEFAULT"] = emulator.connection_json()
        emulator.stream.redelivery_timeout = 1.0
        emulator.stream.disconnect_grace = 0.5
        p50, p95 = asyncio.run(latency(emulator, 1000))
        print(f"latency push -> TriggerEvent over 1,000 events: p50 {p50:.2f} ms, p95 {p95:.2f} ms")
        result = asyncio.run(storm(emulator, args.events))
        print(
            f"{result['pushed']:,} events, disconnect every 500 and 2 TCP drops: "
            f"{result['asset events']:,} asset events, "
            f"lost {result['lost']}, duplicates {result['duplicates']}"
        )
        held = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in result["memory"].items())
        print(f"memory held by the trigger, client and websockets: {held}")
        killed = restart(emulator, 2000)
        print(
            f"triggerer killed mid-stream and restarted, {killed['pushed']:,} events: "
            f"lost {killed['lost']}, duplicates {killed['duplicates']}"
        )
    ok = result["lost"] == 0 and result["duplicates"] == 0 and killed["lost"] == 0
    print("PASS: nothing lost, no duplicate asset events" if ok else "FAIL: events lost or duplicated")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
