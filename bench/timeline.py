"""Run a command; prefix each line it prints with the elapsed seconds, the seconds since the previous line, and the
machine's busy cores (from /proc/stat, sampled each second) over that interval: where a build's wall time goes.

    python bench/timeline.py python build.py --cache-dir /tmp/empty --site-dir /tmp/site
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

CORES = os.cpu_count() or 1


def _stat() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as f:
        values = list(map(int, f.readline().split()[1:]))
    return sum(values), values[3] + values[4]  # all jiffies, idle + iowait


def main() -> None:
    t0, samples = time.time(), []

    def sample() -> None:
        prev = _stat()
        while True:
            time.sleep(1)
            cur = _stat()
            total, idle = cur[0] - prev[0], cur[1] - prev[1]
            samples.append((time.time() - t0, CORES * (1 - idle / max(total, 1))))
            prev = cur

    threading.Thread(target=sample, daemon=True).start()
    child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = 0.0
    for line in child.stdout:
        now = time.time() - t0
        busy = [b for t, b in samples if t > last]
        print(f"{now:7.1f} (+{now - last:5.1f}, {sum(busy) / len(busy) if busy else 0:4.2f} cores) {line}", end="",
              flush=True)
        last = now
    child.wait()
    print(f"total {time.time() - t0:.1f} s, mean busy cores {sum(b for _, b in samples) / max(1, len(samples)):.2f}")
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
