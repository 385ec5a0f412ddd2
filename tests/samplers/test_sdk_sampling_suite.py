"""The SDK's own tests of its samplers (tests/trace/test_sampling.py, from the
installed SDK's source distribution), with tracesieve's TraceIdRatioSampler in
place of TraceIdRatioBased and nothing else changed."""

from __future__ import annotations

from sdk_sources import outcomes, run_rewritten


def test_trace_id_ratio_sampler_passes_the_sdks_sampling_tests(tmp_path):
    finished = run_rewritten(
        {"test_sampling.py": "trace/test_sampling.py"},
        {
            r"(?m)^from opentelemetry\.sdk\.trace import sampling$": (
                "from opentelemetry.sdk.trace import sampling\nfrom tracesieve import TraceIdRatioSampler"
            ),
            r"sampling\.TraceIdRatioBased\b": "TraceIdRatioSampler",
        },
        tmp_path,
    )
    results = outcomes(finished.stdout)
    assert "TraceIdRatioSampler" in (tmp_path / "test_sampling.py").read_text(), "the class was swapped"
    assert len(results) == 17, finished.stdout[-3000:]
    assert set(results.values()) == {"PASSED"}, finished.stdout[-3000:]
