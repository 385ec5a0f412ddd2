"""AdaptiveSampler and ErrorWindowProcessor: windows, boosts, decay, threads."""

from __future__ import annotations

import random
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from tracesieve import AdaptiveSampler, ErrorWindowProcessor, RuleSampler, _core
from tracesieve.policies import seed_policy
from tracesieve.record import service_name

from helpers import ot_value, parent_context

T0 = 1_767_225_600.0


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


class FakeSpan:
    """The public ReadableSpan surface on_end reads, for high-volume feeding."""

    def __init__(self, error=False, seconds=0.01, route=None):
        self.status = Status(StatusCode.ERROR if error else StatusCode.UNSET)
        self.events = ()
        self.start_time = 0
        self.end_time = int(seconds * 1e9)
        self.attributes = {"http.route": route} if route else {}

    def get_span_context(self):
        return None


def kept_probability(sampler, n=20_000, seed=1):
    rng = random.Random(seed)
    return sum(sampler.should_sample(None, rng.getrandbits(128), "s").decision.is_sampled() for _ in range(n)) / n


def test_seed_default_error_burst_raises_within_a_second_and_recovers():
    clock = Clock()
    sampler = AdaptiveSampler(0.1, clock=clock)
    assert sampler.boost == 1.0
    sampler.record_error(6)
    clock.now += 1
    assert sampler.boost == 2.0
    assert 0.18 < kept_probability(sampler) < 0.22
    sampler.record_error(6)
    clock.now += 1
    assert sampler.boost == 3.0
    # Errors stop: the boost steps down as the five-minute window slides past them.
    clock.now = T0 + 299
    assert sampler.boost == 3.0
    clock.now = T0 + 300
    assert sampler.boost == 2.0  # the first six errors left the window
    clock.now = T0 + 301
    assert sampler.boost == 1.0
    assert 0.08 < kept_probability(sampler) < 0.12


def test_boosted_probability_goes_into_th():
    clock = Clock()
    sampler = AdaptiveSampler(0.1, clock=clock)
    sampler.record_error(11)
    clock.now += 1
    kept = [sampler.should_sample(None, random.Random(i).getrandbits(128), "s") for i in range(2000)]
    states = {ot_value(r.trace_state) for r in kept if r.decision.is_sampled()}
    expected = _core.encode_th(_core.threshold_for_probability(0.1 * 3))
    assert states == {f"th:{expected}"}
    assert sampler.stats()["boost"] == 3.0


@pytest.mark.parametrize("per_second", [10, 10_000])
def test_rate_mode_behaves_the_same_at_any_traffic(per_second):
    clock = Clock()
    sampler = AdaptiveSampler(0.05, error_rate_target=0.01, clock=clock)
    seconds = 30 if per_second == 10 else 3
    sent = 0
    for second in range(seconds):
        clock.now = T0 + second
        for _ in range(per_second):
            sampler.processor.on_end(FakeSpan(error=sent % 25 == 0))  # 4% errors
            sent += 1
    clock.now += 1
    assert sampler.boost == 4.0
    assert sampler.stats()["window"]["errors"] == sent // 25


def test_latency_boost_for_slow_routes_only():
    clock = Clock()
    sampler = AdaptiveSampler(0.1, route_thresholds={"/api/search": 0.5}, clock=clock)
    for i in range(100):
        sampler.record_latency(0.9 if i % 5 == 0 else 0.1, route="/api/search")
        sampler.record_latency(0.1, route="/api/order")
    clock.now += 1
    search = sampler.should_sample(None, (1 << 56) - 1, "GET", None, {"http.route": "/api/search"})
    assert ot_value(search.trace_state) == f"th:{_core.encode_th(_core.threshold_for_probability(0.2))}"
    order = sampler.should_sample(None, (1 << 56) - 1, "GET", None, {"http.route": "/api/order"})
    assert ot_value(order.trace_state) == f"th:{_core.encode_th(_core.threshold_for_probability(0.1))}"
    assert sampler.processor.counts()["routes"] == {"/api/search": {"spans": 100, "slow": 20}}


def test_composes_with_a_rule_sampler_in_one_plan():
    clock = Clock(T0 + 3 * 3600)  # noon in Seoul: daytime x1.5
    base = RuleSampler(**seed_policy(), clock=clock)
    sampler = AdaptiveSampler(base)
    assert sampler.processor._clock is clock
    attrs = {"http.route": "/api/order", "user.tier": "free"}
    top = (1 << 56) - 1
    before = sampler.should_sample(None, top, "GET", None, attrs)
    sampler.record_error(6)
    clock.now += 1
    after = sampler.should_sample(None, top, "GET", None, attrs)
    th = lambda p: f"th:{_core.encode_th(_core.threshold_for_probability(p))}"  # noqa: E731
    assert ot_value(before.trace_state) == th(0.3 * 0.5 * 1.5)
    assert ot_value(after.trace_state) == th(0.3 * 0.5 * 1.5 * 2)
    forced = sampler.should_sample(parent_context(5, False), 5, "charge", None, {"business.event": "payment"})
    assert forced.decision.is_sampled()  # keep rules still override the parent
    assert sampler.stats()["rules"]["order-api"]["decisions"] == 2


def test_processor_in_a_tracer_provider_feeds_the_sampler():
    clock = Clock()
    sampler = AdaptiveSampler(1.0, clock=clock)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(sampler.processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    for _i in range(30):
        with tracer.start_as_current_span("ok"):
            pass
    for _i in range(4):
        with tracer.start_as_current_span("status") as span:
            span.set_status(Status(StatusCode.ERROR, "boom"))
    for _i in range(3):
        try:
            with tracer.start_as_current_span("raises"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    with tracer.start_as_current_span("caught") as span:
        span.record_exception(ValueError("handled"))  # exception event, status unset
    counts = sampler.processor.counts()
    assert (counts["spans"], counts["errors"]) == (38, 8)
    clock.now += 1
    assert sampler.boost == 2.0
    provider.shutdown()


def test_kept_spans_stand_for_their_adjusted_count():
    clock = Clock()
    sampler = AdaptiveSampler(0.25, clock=clock)
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(sampler.processor)
    tracer = provider.get_tracer("t")
    for _ in range(4000):
        with tracer.start_as_current_span("s"):
            pass
    counts = sampler.processor.counts()
    assert counts["spans"] % 4 == 0
    assert 3400 < counts["spans"] < 4600  # ~1000 kept spans, each standing for 4


def test_threads_recording_and_sampling_lose_no_counts():
    clock = Clock()
    sampler = AdaptiveSampler(0.5, clock=clock, error_steps=[(10**9, 2.0)])
    barrier = threading.Barrier(8)

    def work(i):
        rng = random.Random(i)
        barrier.wait()
        for _n in range(5000):
            if i % 2:
                sampler.record_error()
                sampler.record_latency(0.01)
            else:
                sampler.should_sample(None, rng.getrandbits(128), "s")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = sampler.processor.counts()
    assert (counts["errors"], counts["spans"]) == (20_000, 20_000)
    assert sampler.stats()["decisions"] == 20_000


def test_unreadable_spans_are_counted_not_raised():
    processor = ErrorWindowProcessor()
    processor.on_end(object())
    processor.on_end(None)
    assert processor.counts()["unreadable_spans"] == 2


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"slow_threshold": -1}, ValueError, r"^slow_threshold: -1 is not a positive number of seconds"),
        ({"route_thresholds": {"/x": 0}}, ValueError, r"^route_thresholds\['/x'\]: 0 is not a positive"),
        ({"window": 0.5, "resolution": 1.0}, ValueError, r"^window: 0.5 s is shorter than its resolution of 1 s"),
        ({"window": "5m"}, TypeError, r"^window: expected a number of seconds, got str"),
        ({"error_steps": [(10, 2.0), (5, 3.0)]}, ValueError, r"^error_steps\[1\]: \(5, 3\) after \(10, 2\) is not monotone"),
        ({"error_steps": [(5, 3.0), (10, 2.0)]}, ValueError, r"not monotone"),
        ({"error_steps": [(-5, 2.0)]}, ValueError, r"^error_steps\[0\]: -5 is negative"),
        ({"error_steps": [(5, 0.5)]}, ValueError, r"^error_steps\[0\]: multiplier 0.5 is below 1"),
        ({"error_rate_target": 0}, ValueError, r"^error_rate_target: 0 is out of range"),
        ({"error_rate_target": 0.1, "error_steps": [(5, 2.0)]}, ValueError, r"not both"),
        ({"latency_boost": 0.5}, ValueError, r"^latency_boost: 0.5 is below 1"),
        ({"slow_ratio": 2}, ValueError, r"^slow_ratio: 2 is out of range"),
        ({"min_spans": -1}, ValueError, r"^min_spans: -1 is negative"),
        ({"clock": 5}, TypeError, r"^clock: expected a callable"),
    ],
)
def test_bad_parameters_give_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        AdaptiveSampler(0.1, **kwargs)


def test_bad_bases_give_clear_errors():
    from tracesieve import TraceIdRatioSampler

    with pytest.raises(ValueError, match="TraceIdRatioSampler decides by the legacy rule"):
        AdaptiveSampler(TraceIdRatioSampler(0.1))
    with pytest.raises(TypeError, match=r"^base: expected a rate"):
        AdaptiveSampler("0.1")
    with pytest.raises(TypeError, match="already an AdaptiveSampler"):
        AdaptiveSampler(AdaptiveSampler(0.1))
    with pytest.raises(ValueError, match=r"^rate: 1.5 is out of range"):
        AdaptiveSampler(1.5)
    with pytest.raises(ValueError, match="count"):
        ErrorWindowProcessor().record_error(-1)
    with pytest.raises(ValueError, match="seconds: -1 is not a duration"):
        ErrorWindowProcessor().record_latency(-1.0)


def test_children_follow_the_parent_whatever_the_boost():
    clock = Clock()
    sampler = AdaptiveSampler(0.0, clock=clock)
    sampler.record_error(100)
    clock.now += 1
    assert not sampler.should_sample(parent_context(5, False), 5, "child").decision.is_sampled()
    assert sampler.should_sample(parent_context(5, True), 5, "child").decision.is_sampled()


@pytest.mark.parametrize("defer", [False, True], ids=["kept spans only", "drops recorded"])
@pytest.mark.parametrize("rate", [0.1, 0.6, 0.7, 1.0])
def test_the_windows_estimate_true_traffic_without_bias(rate, defer):
    """Regression: with defer=True, recorded drops counted 1 on top of kept spans
    counting 1/p (the windows saw ~1.9x the traffic); and adjusted counts were
    rounded per span (at p=0.6 and 0.7, off by up to a third)."""
    from opentelemetry.sdk.trace import TracerProvider

    from tracesieve.cli.ids import SeededIds
    from tracesieve.testing import SimClock

    clock = SimClock(1_767_225_600.0)
    sampler = AdaptiveSampler(rate, clock=clock, defer=defer, error_steps=[(10**9, 2.0)])
    provider = TracerProvider(sampler=sampler, id_generator=SeededIds(rate * 100 + defer))
    provider.add_span_processor(sampler.processor)
    tracer = provider.get_tracer("t")
    total, errors = 50_000, 0
    for i in range(total):
        with tracer.start_as_current_span("GET") as span:
            if i % 20 == 0:
                span.set_status(Status(StatusCode.ERROR))
                errors += 1
    window = sampler.processor.counts()
    # Five standard deviations of the Horvitz-Thompson estimate: a correct window always passes.
    spread = 5 * (max(1e-9, (1 - rate) / (total * rate))) ** 0.5 + 0.002
    assert abs(window["spans"] / total - 1) <= spread, (window, spread)
    error_spread = 5 * (max(1e-9, (1 - rate) / (errors * rate))) ** 0.5 + 0.002
    assert abs(window["errors"] / errors - 1) <= error_spread, (window, error_spread)
    provider.shutdown()


def test_count_mode_boosts_at_the_real_error_count_with_drops_recorded():
    """Regression: with defer=True the windows saw about twice the errors, so
    count mode boosted at half the real error count."""
    from opentelemetry.sdk.trace import TracerProvider

    from tracesieve.cli.ids import SeededIds
    from tracesieve.testing import SimClock

    clock = SimClock(1_767_225_600.0)
    sampler = AdaptiveSampler(0.1, clock=clock, defer=True, error_steps=[(100, 2.0)])
    provider = TracerProvider(sampler=sampler, id_generator=SeededIds(5))
    provider.add_span_processor(sampler.processor)
    tracer = provider.get_tracer("t")
    for _ in range(90):  # below the step: no boost
        with tracer.start_as_current_span("GET") as span:
            span.set_status(Status(StatusCode.ERROR))
    clock.now += 1
    assert sampler.boost == 1.0, sampler.processor.counts()
    for _ in range(20):  # 110 > 100: boost
        with tracer.start_as_current_span("GET") as span:
            span.set_status(Status(StatusCode.ERROR))
    clock.now += 1
    assert sampler.boost == 2.0
    provider.shutdown()


def test_the_boost_reacts_within_seconds_after_the_wall_clock_steps_back():
    """Regression: after a 1-hour backward NTP step the boost reacted to an error
    storm after 3,271 s instead of 6 s (the windows ticked on the wall clock)."""
    from tracesieve.testing import SimClock

    clock = SimClock(1_767_225_600.0)
    sampler = AdaptiveSampler(0.1, clock=clock)
    for _ in range(120):
        clock.advance(1.0)
        sampler.processor.record_latency(0.01)
    clock.jump(-3600.0)
    reacted_after = None
    for second in range(1, 60):
        clock.advance(1.0)
        sampler.record_error(3)
        if sampler.boost >= 2.0:
            reacted_after = second
            break
    assert reacted_after is not None and reacted_after <= 6, reacted_after


def test_adjusted_count_reads_any_span_and_passes_over_counts_that_are_none():
    """Spans come from anywhere: an adjusted count that is text, NaN, below 1 or above the
    2**56 a th can say (1e308 made every total infinite) is read as absent (the span's th
    then decides); a non-span is a TypeError."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tracesieve import ProbabilitySampler, adjusted_count
    from tracesieve.estimate import ADJUSTED_COUNT

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ProbabilitySampler(0.5))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    values = ["3", float("nan"), -1.0, 10**400, True, 4, 1e308, 0.5, 0, 2**56 + 1]
    for i in range(400):
        with tracer.start_as_current_span("s", attributes={ADJUSTED_COUNT: values[i % len(values)]} if i % len(values) != 3 else {}):
            pass
    spans = exporter.get_finished_spans()
    assert spans and {adjusted_count(span) for span in spans} == {2.0, 4.0}, "th's 2, or the valid count 4"
    with pytest.raises(TypeError, match="span: expected a finished span"):
        adjusted_count(None)


def test_the_error_windows_take_the_store_words_a_budget_takes(private_state_dir):
    """Regression: store="memory" and store="host" were refused as URLs with
    "has no scheme" (only a budget took them), and the message listed neither."""
    assert ErrorWindowProcessor(store="memory")._native.store_info()["url"] is None
    shared = ErrorWindowProcessor(store="host")._native.store_info()["url"]
    assert shared == f"file://{private_state_dir.resolve()}/{service_name()}.tracesieve"
    with pytest.raises(_core.ConfigError, match=r'^store: "Memory" is not a store \(did you mean "memory"\?\); expected "memory"'):
        ErrorWindowProcessor(store="Memory")


def test_explain_at_a_given_time_reads_the_boost_in_force_then():
    """Regression: explain(now=...) read the error windows with the wall time as
    their monotonic time, where every window had long passed: a pipeline
    boosted x3 by an error burst was explained at x1."""
    from tracesieve import from_config
    from tracesieve.testing import SimClock

    clock = SimClock(1_767_225_600.0 + 1000)
    sampler = from_config({"store": "memory", "adaptive": {}, "rules": {"default_rate": 0.1, "rules": []}}, clock=clock)
    sampler.processor.record_error(20)
    clock.now += 1
    boost = lambda **now: sampler.explain("GET", **now)["lines"][0]  # noqa: E731
    assert boost() == boost(now=clock.now) == "times the adaptive boost in force: x3"
    assert boost(now=clock.now + 3600) == "times the adaptive boost in force: x1", "the burst has left the five-minute window"
