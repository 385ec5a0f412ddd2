"""The SDK's own tests of its composable samplers (tests/trace/composite_sampler,
from the installed SDK's source distribution), with ``tracesieve.composable``
imported in place of ``opentelemetry.sdk.trace._sampling_experimental`` and
nothing else changed; beside them, the same tests on the SDK's own module."""

from __future__ import annotations

from sdk_sources import outcomes, run_rewritten, sdk_tests


def test_tracesieve_composable_passes_the_sdks_composite_tests(tmp_path):
    suite = sdk_tests() / "trace" / "composite_sampler"
    files = {path.name: f"trace/composite_sampler/{path.name}" for path in suite.glob("test_*.py")}
    ours = run_rewritten(files, {r"opentelemetry\.sdk\.trace\._sampling_experimental": "tracesieve.composable"}, tmp_path / "ours")
    theirs = run_rewritten(files, {}, tmp_path / "sdk")
    for name in files:
        text = (tmp_path / "ours" / name).read_text()
        assert "_sampling_experimental" not in text and "tracesieve.composable" in text, name
    ours_results, sdk_results = outcomes(ours.stdout), outcomes(theirs.stdout)
    assert len(ours_results) >= 80 and set(ours_results) == set(sdk_results), ours.stdout[-3000:]
    assert set(sdk_results.values()) == {"PASSED"}, "the seeded run passes on the SDK's own module"
    failed = {test for test, outcome in ours_results.items() if outcome != "PASSED"}
    assert not failed, ours.stdout[-5000:]
