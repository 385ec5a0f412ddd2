"""Everything that owns a thread works in a forked child (gunicorn --preload and
every pre-fork server fork after the provider is built): the tail processor's
worker, budget snapshots and the config watcher start again in the child,
which exports its own spans and none of its parent's."""

from __future__ import annotations

import json
import os
import time
import traceback

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from tracesieve import ProbabilitySampler, TailSamplingProcessor, from_config

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


class CountingFile(SpanExporter):
    """Appends the number of spans of each export, with the pid, to a file."""

    def __init__(self, path):
        self.path = path

    def export(self, spans):
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "spans": len(spans)}) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


def exported_by(path, pid):
    if not path.exists():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return sum(row["spans"] for row in rows if row["pid"] == pid)


def run_in_child(body, tmp_path):
    """Fork; run `body()` in the child; fail with the child's traceback if it failed."""
    report = tmp_path / f"child-{time.monotonic_ns()}.txt"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            body()
            code = 0
        except BaseException:
            report.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report.read_text() if report.exists() else "the child failed"
    return pid


def test_a_forked_child_exports_its_tail_decisions_and_not_its_parents(tmp_path):
    """Regression: provider and TailSamplingProcessor built, then os.fork(): the
    child ended 5,000 error traces and exported none (its worker thread did
    not exist). The SDK's BatchSpanProcessor in the same child exported 5,000."""
    out = tmp_path / "exports.jsonl"
    tail = TailSamplingProcessor(CountingFile(out), decision_wait=0.05, schedule_delay=0.05)
    provider = TracerProvider(sampler=ProbabilitySampler(0.0, defer=True))
    provider.add_span_processor(tail)
    tracer = provider.get_tracer("t")
    for _ in range(100):  # buffered in the parent when it forks
        with tracer.start_as_current_span("parent-error") as span:
            span.set_status(Status(StatusCode.ERROR))

    def child():
        for _ in range(5000):
            with tracer.start_as_current_span("child-error") as span:
                span.set_status(Status(StatusCode.ERROR))
        assert tail.force_flush(timeout_millis=20_000)
        stats = tail.stats()
        assert stats["spans_exported"] == 5000, stats
        provider.shutdown()

    child_pid = run_in_child(child, tmp_path)
    assert exported_by(out, child_pid) == 5000, "the child exports its own spans, and none of the parent's"
    assert tail.force_flush(timeout_millis=20_000)
    assert exported_by(out, os.getpid()) == 100
    provider.shutdown()


@pytest.mark.parametrize("owner", ["TailSamplingProcessor", "tracesieve.TracerProvider"])
def test_shut_down_before_a_fork_stays_shut_down_in_the_child(owner, tmp_path):
    """The child got a fresh, open buffer and no worker: its spans piled up unexported
    and uncounted. Now they are dropped and counted, as they are in the parent."""
    import tracesieve

    out = tmp_path / "exports.jsonl"
    keep_all = [{"name": "all", "match": {}}]
    if owner == "TailSamplingProcessor":
        provider = TracerProvider()
        counted = TailSamplingProcessor(CountingFile(out), rules=keep_all)
        provider.add_span_processor(counted)
    else:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        provider = counted = tracesieve.TracerProvider(rules=keep_all)
        provider.add_span_processor(SimpleSpanProcessor(CountingFile(out)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("before"):
        pass
    provider.shutdown()

    def child():
        for _ in range(50):
            with tracer.start_as_current_span("in the child"):
                pass
        stats = counted.stats()
        assert stats["spans_after_shutdown"] == 50 and stats["spans_buffered"] == 0, stats

    child_pid = run_in_child(child, tmp_path)
    assert exported_by(out, child_pid) == 0 and exported_by(out, os.getpid()) == 1


def test_budget_snapshots_and_the_config_watcher_run_in_a_forked_child(tmp_path):
    config = tmp_path / "sampling.yaml"
    state = tmp_path / "budget.json"
    config.write_text(
        f"reload: true\nreload_interval: 0.05\nprobability: {{rate: 1.0}}\nbudget: {{budget: 1000, period: day, state_path: {state}, save_interval: 0.05}}\n"
    )
    sampler = from_config(config)

    def child():
        os.unlink(state) if state.exists() else None
        for i in range(10):
            sampler.should_sample(None, (1 << 56) - 1 - i, "x")
        mine = sampler.budget_status()["used_spans"]
        # Parent and child both save to this path (with the per-process store,
        # the last writer wins): wait until the child's own snapshot shows up.
        deadline = time.monotonic() + 10
        seen = None
        while seen != mine and time.monotonic() < deadline:
            time.sleep(0.01)
            try:
                seen = json.loads(state.read_text())["used_spans"]
            except (OSError, ValueError):
                pass
        assert seen == mine, "the child's snapshot thread saved its spending"
        config.write_text(
            f"reload: true\nreload_interval: 0.05\nprobability: {{rate: 0.0}}\nbudget: {{budget: 1000, period: day, state_path: {state}, save_interval: 0.05}}\n"
        )
        deadline = time.monotonic() + 10
        while sampler.reloads == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sampler.reloads == 1, "the child's watcher reloaded the edited file"

    run_in_child(child, tmp_path)
    sampler.close()


def test_background_jitter_leaves_the_applications_random_alone_and_differs_per_child(tmp_path):
    """Pollers, fleet workers and shared tail decisions spread their work with
    `jitter`: an application that seeds `random` keeps its own sequence, and
    forked workers never jitter alike (as a private seeded generator would)."""
    import random

    from tracesieve._background import jitter

    random.seed(7)
    before = random.getstate()
    draws = [jitter(-2.0, 3.0) for _ in range(1000)]
    assert random.getstate() == before
    assert all(-2.0 <= d <= 3.0 for d in draws) and len(set(draws)) == 1000

    seen = tmp_path / "child-draws.txt"

    def draw_in_child():
        with open(seen, "a", encoding="utf-8") as handle:
            handle.write(f"{jitter(0.0, 1.0)!r}\n")

    for _ in range(3):
        random.seed(7)
        run_in_child(draw_in_child, tmp_path)
    assert len(set(seen.read_text().split())) == 3


HELD_AT_FORK = """
import importlib, os, sys, threading, time
from tracesieve import BudgetSampler
module = importlib.import_module(sys.argv[1])
held = threading.Event()
def hold():  # as a metric reader's thread collecting, or a thread building a sampler, at the fork
    with getattr(module, sys.argv[2]):
        held.set()
        time.sleep(5)
threading.Thread(target=hold, daemon=True).start()
held.wait()
child = os.fork()
if child == 0:
    BudgetSampler(1.0, budget=1_000, name="forked")  # registers its metrics and watches its record file
    os._exit(0)
for _ in range(100):
    done, status = os.waitpid(child, os.WNOHANG)
    if done:
        print("built", os.waitstatus_to_exitcode(status))
        sys.exit(0)
    time.sleep(0.03)
os.kill(child, 9)
print("hung")
"""


@pytest.mark.parametrize(("module", "lock"), [("tracesieve.metrics", "_LOCK"), ("tracesieve._store", "_watcher_lock")])
def test_a_child_forked_while_a_module_lock_was_held_builds_samplers(module, lock):
    """A fork while another thread held one of the modules' locks left it held
    for good in the child: the child's first sampler waited forever."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", HELD_AT_FORK, module, lock], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "built 0", run.stdout + run.stderr
