"""What retained spans really cost in memory: the process's resident memory
growth while a ``tracesieve.TracerProvider`` retains dropped 3-span traces
(3 short attributes per span) at two ring sizes, against the ring's own
accounting.

    python benches/retention_memory.py

For each ``retention_bytes`` the ring is filled far past its size (so it
evicts steadily) and the growth of resident memory is read from
``/proc/self/statm``. The slope between the two sizes is the memory each
retained span really takes (fixed costs such as the decision cache cancel
out); the ratio of growth to ``retention_bytes`` shows the bound holds.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from typing import Tuple

from tracesieve import ProbabilitySampler, TracerProvider

ATTRIBUTES = {"http.request.method": "GET", "http.route": "/api/order", "customer.tier": "silver"}


def resident() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fill(retention_mib: int, traces: int) -> Tuple[int, int, int]:
    """(retained spans, bytes the ring counts, resident growth in bytes)."""
    provider = TracerProvider(
        sampler=ProbabilitySampler(0.0, defer=True),
        decision_wait=0.0,
        retention_bytes=retention_mib << 20,
        shutdown_on_exit=False,
        start=False,
    )
    tracer = provider.get_tracer("memory")

    def request(i: int) -> None:
        with tracer.start_as_current_span("GET /api/order", attributes={**ATTRIBUTES, "n": i}):
            tracer.start_span("SELECT orders", attributes=ATTRIBUTES).end()
            tracer.start_span("cache.get", attributes=ATTRIBUTES).end()

    for i in range(2_000):
        request(i)
    provider.step()
    gc.collect()
    before = resident()
    for i in range(traces):
        request(i)
        if i % 2_000 == 0:
            provider.step()
    provider.step()
    gc.collect()
    stats = provider.stats()
    return stats["retained_spans"], stats["retained_bytes"], resident() - before


def measured(size: int, traces: int) -> Tuple[int, int, int]:
    """``fill`` in a fresh process (freed memory from another run would hide growth)."""
    program = f"import json, sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); import retention_memory; print(json.dumps(retention_memory.fill({size}, {traces})))"
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    spans, counted, growth = json.loads(out.stdout.splitlines()[-1])
    return spans, counted, growth


def main() -> int:
    if not os.path.exists("/proc/self/statm"):
        print("needs Linux (/proc/self/statm)")
        return 1
    small, large = 16, 64
    rows = {size: measured(size, traces) for size, traces in ((small, 400_000), (large, 1_000_000))}
    for size, (spans, counted, growth) in rows.items():
        print(
            f"retention_bytes {size} MiB: {spans:,} spans retained, ring counts {counted / 2**20:.1f} MiB "
            f"({counted / spans:.0f} B/span), resident growth {growth / 2**20:.1f} MiB ({growth / (size << 20):.2f}x retention_bytes)"
        )
    spans = rows[large][0] - rows[small][0]
    growth = rows[large][2] - rows[small][2]
    per_span = growth / spans
    print(f"memory per retained span (slope between the two): {per_span:.0f} B")
    print(f"a 256 MiB ring at 5,000 spans/s holds {(256 << 20) / per_span / 5000:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
