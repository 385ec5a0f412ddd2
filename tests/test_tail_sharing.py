"""Tail decisions shared between services through a real redis-server: three
services as separate processes over HTTP, a leaf's error reaching its callers
and a caller's slowness reaching the leaf, honest counts, bounded memory under
a flood, and Redis gone then back."""

from __future__ import annotations

import logging
import os
import random
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracesieve import ConfigError, ProbabilitySampler, TailSamplingProcessor
from tracesieve.cli.chain import ChainSettings, run_chain
from tracesieve.cli.scenarios import SERVICES, Faults, plans
from tracesieve.local_redis import RedisServer, free_port
from tracesieve.sharing import MAX_BATCH, STREAM_ENTRIES

from helpers import FakeSpan


def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def whole_share(run, labelled, group, pick):
    services_of = {}
    for span in run.spans:
        services_of.setdefault(span.trace_id, set()).add(span.service)
    chosen = [tid for tid, (label, plan) in zip(run.trace_ids, labelled) if label == group and pick(plan)]
    return sum(1 for tid in chosen if len(services_of.get(tid, ())) == 3) / len(chosen), len(chosen)


def test_three_services_as_processes_keep_error_and_slow_traces_whole(redis_server):
    # Errors start in the leaf (payments): at q = 0 only the leaf fails, at q = 0.5
    # each caller fails with probability 0.5 in turn. Slowness starts in the frontend,
    # after the leaf's span ended: the leaf must hold its spans for the announcement.
    labelled = [("q=0", p) for p in plans(500, 11, Faults(propagation=0.0), error_rate=0.3)]
    labelled += [("q=0.5", p) for p in plans(500, 12, Faults(propagation=0.5), error_rate=0.3)]
    labelled += [("slow", p) for p in plans(120, 13, Faults(slow_rate=1.0), error_rate=0.0)]
    random.Random(5).shuffle(labelled)
    requests = [plan for _, plan in labelled]
    shared = run_chain(ChainSettings("shared", redis_url=redis_server.url), requests)
    alone = run_chain(ChainSettings("tail"), requests)

    failed = lambda plan: bool(plan.errors)  # noqa: E731
    for group, pick in (("q=0", failed), ("q=0.5", failed), ("slow", lambda plan: bool(plan.slow))):
        fraction, count = whole_share(shared, labelled, group, pick)
        assert count >= 100, group
        assert fraction >= 0.99, (group, fraction, shared.stats)
        baseline, _ = whole_share(alone, labelled, group, pick)
        assert baseline < 0.75, (group, baseline)
    # Nothing announces a clean trace: sharing keeps the same spans of them as deciding alone.
    assert shared.trace_ids == alone.trace_ids == [plan.trace_id for plan in requests]
    clean = {plan.trace_id for plan in requests if not plan.errors and not plan.slow}
    for service in SERVICES:
        with_sharing = sum(1 for s in shared.spans if s.service == service and s.trace_id in clean)
        without = sum(1 for s in alone.spans if s.service == service and s.trace_id in clean)
        assert abs(with_sharing - without) <= 0.1 * without, (service, with_sharing, without)
    for service in SERVICES:
        stats = shared.stats[service]
        assert stats["share_failures"] == 0 and stats["bad_batches"] == 0
        assert stats["heard_too_late"] == 0, (service, stats)
    assert shared.stats["payments"]["announced"] >= 250  # every error trace, from where it started
    # Spans kept for another service's announcement say so, with an adjusted count of 1.
    marked = [s for s in shared.spans if s.reason and s.reason.startswith("shared:")]
    assert marked and all(s.adjusted_count == 1.0 for s in marked if s.reason == "shared:error")


def chain_pair(url_or_exchange, wait=0.3, **kwargs):
    exporter = InMemorySpanExporter()
    providers, tails = [], []
    for _ in range(2):
        tail = TailSamplingProcessor(exporter, decision_wait=wait, share=url_or_exchange, schedule_delay=0.05, **kwargs)
        provider = TracerProvider(sampler=ProbabilitySampler(0.0, defer=True))
        provider.add_span_processor(tail)
        providers.append(provider)
        tails.append(tail)
    return exporter, [p.get_tracer("t") for p in providers], tails


def across(span):
    """The context another service sees: ``span`` as a remote parent, over W3C headers."""
    carrier = {}
    propagator = TraceContextTextMapPropagator()
    propagator.inject(carrier, context=set_span_in_context(span))
    return propagator.extract(carrier)


def one_request(caller, leaf, fail_leaf=True):
    root = caller.start_span("root")
    child = leaf.start_span("leaf", context=across(root))
    if fail_leaf:
        child.set_status(Status(StatusCode.ERROR))
    child.end()
    root.end()
    return root.get_span_context().trace_id


def test_redis_down_falls_back_to_deciding_alone_logged_once_then_shares_again(caplog):
    server = RedisServer()
    caplog.set_level(logging.WARNING, logger="tracesieve.sharing")
    exporter, (caller, leaf), tails = chain_pair(server.url + "#down")
    try:
        ids = [one_request(caller, leaf) for _ in range(20)]
        assert wait_for(lambda: all(t.stats()["share_failures"] >= 2 for t in tails))
        for tail in tails:
            tail.force_flush()
        kept = {(s.name, s.context.trace_id) for s in exporter.get_finished_spans()}
        assert all(("leaf", tid) in kept and ("root", tid) not in kept for tid in ids), "alone, the caller cannot know"
        assert tails[0].stats()["share_connected"] == 0 and tails[1].stats()["announcements_waiting"] == 20
        down = [r for r in caplog.records if "cannot reach" in r.getMessage()]
        assert len(down) == 1 and "decides on its own spans" in down[0].getMessage()
        server.start()
        assert wait_for(lambda: all(t.stats()["share_connected"] for t in tails), 40)
        assert any("again" in r.getMessage() for r in caplog.records)
        later = one_request(caller, leaf)
        assert wait_for(lambda: ("root", later) in {(s.name, s.context.trace_id) for s in exporter.get_finished_spans()}, 10)
    finally:
        for tail in tails:
            tail.shutdown()
        server.stop()


def test_a_late_announcement_keeps_later_spans_and_is_counted(redis_server):
    exporter, (caller, leaf), tails = chain_pair(redis_server.url + "#late", wait=0.05)
    assert wait_for(lambda: all(t.stats()["share_connected"] for t in tails))
    root = caller.start_span("root")
    first = leaf.start_span("leaf-first", context=across(root))
    first.end()
    assert wait_for(lambda: tails[1].stats()["traces_dropped"] == 1)
    root.set_status(Status(StatusCode.ERROR))
    root.end()
    assert wait_for(lambda: tails[1].stats()["heard_too_late"] == 1)
    second = leaf.start_span("leaf-second", context=across(root))
    second.end()
    assert wait_for(lambda: "leaf-second" in {s.name for s in exporter.get_finished_spans()})
    late = next(s for s in exporter.get_finished_spans() if s.name == "leaf-second")
    assert late.attributes["tracesieve.tail.reason"] == "shared:error"
    assert late.attributes["tracesieve.tail.late"] is True and late.attributes["tracesieve.adjusted_count"] == 1.0
    for tail in tails:
        tail.shutdown()


def test_a_flood_with_sharing_stays_within_the_documented_caps(redis_server):
    # 1,000,000 spans across 100,000 traces in one service, a tenth of the traces
    # failing, while a second service hears every announcement.
    exporter = InMemorySpanExporter()
    url = redis_server.url + "#flood"
    tail = TailSamplingProcessor(exporter, share=url, max_queue_size=10_000, schedule_delay=0.05, decision_wait=0.05)
    other = TailSamplingProcessor(InMemorySpanExporter(), share=url, decision_cache_size=20_000)
    assert wait_for(lambda: tail.stats()["share_connected"] and other.stats()["share_connected"])
    failing = FakeSpan(1, 1, root=False)
    failing.status = Status(StatusCode.ERROR)
    rng = random.Random(8)
    peak = {"traces_buffered": 0, "heard_held": 0, "announcements_waiting": 0, "spans_queued": 0}
    for trace in range(100_000):
        trace_id = rng.getrandbits(128) | 1
        for span in range(10):
            fake = FakeSpan(trace_id, span + 2, root=span == 9)
            if span == 0 and trace % 10 == 0:
                fake.status = failing.status
            tail.on_end(fake)
        if trace % 5_000 == 0:
            for source in (tail.stats(), other.stats()):
                for key in peak:
                    peak[key] = max(peak[key], source[key])
    assert wait_for(lambda: other.stats()["heard"] >= 9_000, 30)
    stats, heard = tail.stats(), other.stats()
    assert peak["traces_buffered"] <= 10_000 and peak["spans_queued"] <= 10_000
    assert peak["announcements_waiting"] <= 10_000
    assert heard["heard_held"] <= 20_000 and peak["heard_held"] <= 20_000
    assert stats["announced"] == 10_000
    assert stats["spans_ended"] == 1_000_000
    assert stats["spans_ended"] == stats["spans_buffered"] + stats["spans_kept"] + stats["spans_dropped"] + stats["late_dropped"]
    assert heard["heard"] + heard["announcements_dropped"] + stats["announcements_dropped"] >= 9_000
    # Redis holds at most STREAM_ENTRIES batches of MAX_BATCH announcements (25 bytes each, plus the stream's own bookkeeping).
    client = redis_server.client()
    memory = client.memory_usage("tracesieve:flood:tail")
    assert memory is not None and memory <= STREAM_ENTRIES * (MAX_BATCH * 25 + 64) + 1_000_000
    assert client.xlen("tracesieve:flood:tail") <= STREAM_ENTRIES * 1.2
    assert 0 < client.pttl("tracesieve:flood:tail") <= 60_000
    tail.shutdown()
    other.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"share": "http://localhost"}, 'share: "http://localhost/" is no Redis URL'),
        ({"share": 5}, "share: expected a redis:// or rediss:// URL, got int 5"),
        ({"share": "redis://localhost", "share_interval": 0}, "share_interval"),
        ({"share": "redis://localhost", "share_ttl": -1}, "share_ttl"),
        ({"share": "redis://:pw@localhost/x"}, "database number"),
        ({"share": "redis://:pw@localhost/0?interval=1"}, "has interval=, an option of fleet stores"),
    ],
)
def test_bad_sharing_settings_fail_at_construction(kwargs, message):
    with pytest.raises(ConfigError) as error:
        TailSamplingProcessor(InMemorySpanExporter(), **kwargs)
    assert message in str(error.value) and "pw" not in str(error.value)


def test_unreachable_redis_never_slows_on_end():
    tail = TailSamplingProcessor(InMemorySpanExporter(), share=f"redis://127.0.0.1:{free_port()}/0")
    started = time.perf_counter()
    for i in range(20_000):
        tail.on_end(FakeSpan(i + 1, 7, root=True))
    assert (time.perf_counter() - started) / 20_000 < 50e-6
    tail.shutdown()


def test_a_forked_child_announces_to_its_parent_as_a_new_member(redis_server):
    tail = TailSamplingProcessor(InMemorySpanExporter(), share=redis_server.url + "#fork")
    assert wait_for(lambda: tail.stats()["share_connected"])
    pid = os.fork()
    if pid == 0:  # the child: its own buffer, origin and Redis connections
        code = 1
        try:
            span = FakeSpan(77, 2, root=True)
            span.status = Status(StatusCode.ERROR)
            tail.on_end(span)
            code = 0 if wait_for(lambda: tail.stats()["share_batches_sent"] >= 1) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert wait_for(lambda: tail.stats()["heard"] == 1), tail.stats()
    assert tail.stats()["announced"] == 0
    tail.shutdown()


def test_shutdown_gives_pending_traces_their_wait_to_hear_announcements(redis_server):
    exporter, (caller, leaf), tails = chain_pair(redis_server.url + "#bye", wait=0.5)
    assert wait_for(lambda: all(t.stats()["share_connected"] for t in tails))
    root = caller.start_span("root")
    root.end()
    child = leaf.start_span("leaf", context=across(root))
    child.set_status(Status(StatusCode.ERROR))
    child.end()
    tails[0].shutdown()  # at once: the leaf's announcement is still on its way
    assert "root" in {s.name for s in exporter.get_finished_spans()}
    assert tails[0].stats()["kept_shared"] == 1
    tails[1].shutdown()
