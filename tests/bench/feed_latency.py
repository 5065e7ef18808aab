"""Studio feed latency (JSON lines on stdout): a write to the store -> the feed's event reaching a subscriber.

1. this kernel: ``Studio.create_project`` returns -> its ``project`` event delivered (the API pokes the feed);
2. another process on the same home: its ``create_project`` returns -> the event delivered here (noticed by the
   watcher through ``PRAGMA data_version``, checked every 0.25 s);
3. the watcher's cost while nothing changes: CPU seconds per wall second of this process with a feed open.

Run: .venv/bin/python tests/bench/feed_latency.py [--n 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from nerf_widgets.jobs import shutdown_runners
from nerf_widgets.jobs.bus import Batch
from nerf_widgets.studio import Studio

CHILD = """
import sys, time
from nerf_widgets.studio import Studio
studio = Studio(sys.argv[1])
for i in range(int(sys.argv[2])):
    studio.create_project(f"other {i}")
    print(time.time(), flush=True)
    time.sleep(0.13)
"""


class Arrivals:
    """Arrival time of each project event, by project name."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.cond = threading.Condition()

    def __call__(self, batch: Batch) -> None:
        now = time.time()
        with self.cond:
            for event in batch.events:
                if event.kind == "project":
                    self.at.setdefault(event.data["name"], now)
            self.cond.notify_all()

    def wait(self, name: str, timeout: float = 30.0) -> float:
        with self.cond:
            assert self.cond.wait_for(lambda: name in self.at, timeout), f"no event for {name}"
            return self.at[name]


def summary(name: str, ms: list[float]) -> dict[str, Any]:
    ms = sorted(ms)
    return {"bench": name, "n": len(ms), "median_ms": round(statistics.median(ms), 2),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2), "max_ms": round(ms[-1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Path(tmp) / "home")
        arrivals = Arrivals()
        sub = studio.feed.subscribe(arrivals, name="bench", max_rate_hz=0)  # widgets: 10 batches/s at most
        local = []
        for i in range(args.n):
            studio.create_project(f"here {i}")
            done = time.time()
            local.append(1000 * (arrivals.wait(f"here {i}") - done))
        print(json.dumps(summary("feed_this_kernel", local)))
        child = subprocess.run([sys.executable, "-c", CHILD, str(studio.home), str(args.n)], capture_output=True,
                               text=True, check=True)
        written = [float(line) for line in child.stdout.split()]
        other = [1000 * (arrivals.wait(f"other {i}") - t) for i, t in enumerate(written)]
        print(json.dumps(summary("feed_other_process", other)))
        cpu0, wall0 = time.process_time(), time.time()
        time.sleep(10)
        print(json.dumps({"bench": "feed_idle_cpu", "cpu_s_per_s": round((time.process_time() - cpu0)
                                                                          / (time.time() - wall0), 5)}))
        sub.close()
        shutdown_runners()
        studio.close()


if __name__ == "__main__":
    main()
