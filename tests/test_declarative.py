"""OpenTelemetry declarative configuration files: tracesieve as a plugin
sampler through the SDK's real configuration path (opentelemetry-configuration,
in fresh processes), environment substitution, failing safe, whole files in
``from_config`` and ``tracesieve check``, and the same ``composite/development``
YAML giving the SDK's decisions."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState, set_span_in_context

from tracesieve import ConfigError, TraceIdRatioSampler, from_config
from tracesieve.composable import CompositeSampler

from helpers import ot_value

pytest.importorskip("opentelemetry.configuration", reason="opentelemetry-configuration needs Python 3.10+")

from opentelemetry.configuration import load_config_file
from opentelemetry.configuration._tracer_provider import _create_sampler

#: A provider exporting to the console, as the schema asks of every file (a processor at least).
CONSOLE_PROVIDER = """
tracer_provider:
  processors:
    - simple:
        exporter:
          console: {}
"""

PARENT_BASED = (
    'file_format: "1.1"'
    + CONSOLE_PROVIDER
    + """  sampler:
    parent_based:
      root:
        tracesieve:
          probability:
            rate: ${RATE:-0.5}
      remote_parent_sampled:
        tracesieve:
          composite/development:
            rule_based:
              rules:
                - attribute_values: {key: http.route, values: [/health]}
                  sampler: {always_off: {}}
                - sampler:
                    rate_limited:
                      traces_per_second: 100
                      delegate: {always_on: {}}
"""
)

#: What a child process reports about the sampler the SDK built.
REPORT = """
import json, os
from opentelemetry import trace
{configure}
sampler = trace.get_tracer_provider().sampler
root, remote = sampler._root, sampler._remote_parent_sampled
print(json.dumps({{
    "description": sampler.get_description(),
    "root": root.get_description(),
    "root_rate": root.resolved["stages"][0]["rate"] if hasattr(root, "resolved") else None,
    "remote": remote.get_description(),
    "remote_lines": getattr(remote, "description", []),
}}))
"""

SDK_PATH = "from opentelemetry.configuration import configure_sdk, load_config_file\nconfigure_sdk(load_config_file(os.environ['OTEL_CONFIG_FILE']))"
ZERO_CODE = "from opentelemetry.sdk._configuration import _OTelSDKConfigurator\n_OTelSDKConfigurator()._configure()"


def write(tmp_path: Path, text: str, name: str = "otel.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def configured(path: Path, configure: str, **env: str):
    environment = {**os.environ, "OTEL_CONFIG_FILE": str(path), **env}
    finished = subprocess.run(
        [sys.executable, "-c", REPORT.format(configure=configure)], env=environment, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1]), finished.stderr


@pytest.mark.parametrize("configure", [SDK_PATH, ZERO_CODE], ids=["configure_sdk", "OTEL_CONFIG_FILE zero-code"])
def test_the_sdk_builds_each_tracesieve_node_in_its_place(tmp_path, configure):
    report, _ = configured(write(tmp_path, PARENT_BASED), configure, RATE="0.25")
    assert report["root"] == "PipelineSampler{probability}" and report["root_rate"] == 0.25
    assert report["remote"] == "CompositeSampler{rule_based}"
    assert any("rate_limited: at most 100 traces per second" in line for line in report["remote_lines"])
    assert report["description"].startswith("ParentBased{root:PipelineSampler{probability},remoteParentSampled:CompositeSampler")


def test_an_unset_variable_takes_its_default(tmp_path):
    report, _ = configured(write(tmp_path, PARENT_BASED), SDK_PATH)
    assert report["root_rate"] == 0.5


def test_a_mistake_fails_safe_and_names_the_file_and_key(tmp_path):
    text = PARENT_BASED.replace("rate: ${RATE:-0.5}", "rate: 7")
    path = write(tmp_path, text)
    report, stderr = configured(path, SDK_PATH)
    assert report["root"] == "ProbabilitySampler{0.01}", "a misconfigured node keeps 1%, not everything"
    assert str(path) in stderr and "tracer_provider.sampler.parent_based.root.tracesieve.probability.rate: 7 is out of range" in stderr


COMPOSITE = """
file_format: "1.1"
tracer_provider:
  processors: [{simple: {exporter: {console: {}}}}]
  sampler:
    composite/development:
      parent_threshold:
        root:
          rule_based:
            rules:
              - attribute_values: {key: http.route, values: [/health, /metrics]}
                sampler: {always_off: {}}
              - attribute_patterns: {key: http.route, included: ["/checkout*"], excluded: ["/checkout/test*"]}
                span_kinds: [server]
                sampler: {always_on: {}}
              - parent: [none]
                sampler: {probability: {ratio: 0.1}}
"""


def test_the_same_composite_yaml_decides_as_the_sdks_composite(tmp_path):
    path = write(tmp_path, COMPOSITE)
    ours = from_config(path)
    theirs = _create_sampler(load_config_file(path).tracer_provider.sampler)
    assert isinstance(ours, CompositeSampler)
    rng = random.Random(7)
    for _ in range(20_000):
        trace_id = rng.getrandbits(128) or 1
        context, trace_state = None, None
        if rng.random() < 0.5:
            ot = rng.choice(["th:8", "th:e6666666666666", "rv:00112233445566", "th:c;rv:ffeeddccbbaa99", ""])
            trace_state = TraceState([("ot", ot)]) if ot else None
            flags = TraceFlags(TraceFlags.SAMPLED if rng.random() < 0.5 else TraceFlags.DEFAULT)
            span = NonRecordingSpan(SpanContext(trace_id, 1, rng.random() < 0.5, flags, trace_state))
            context = set_span_in_context(span)
        route = rng.choice(["/health", "/metrics", "/checkout", "/checkout/test/1", "/api"])
        kind = rng.choice([SpanKind.SERVER, SpanKind.CLIENT, None])
        ours_result = ours.should_sample(context, trace_id, "s", kind, {"http.route": route}, None, trace_state)
        their_result = theirs.should_sample(context, trace_id, "s", kind, {"http.route": route}, None, trace_state)
        assert ours_result.decision == their_result.decision
        if ours_result.decision.is_sampled():
            assert ot_value(ours_result.trace_state) == ot_value(their_result.trace_state)


def test_from_config_reads_the_sampler_of_a_whole_file(tmp_path):
    ratio = write(
        tmp_path,
        """
        file_format: "1.1"
        tracer_provider:
          processors: [{simple: {exporter: {console: {}}}}]
          sampler: {parent_based: {root: {trace_id_ratio_based: {ratio: 0.25}}}}
        """,
    )
    sampler = from_config(ratio)
    assert isinstance(sampler, TraceIdRatioSampler) and sampler.rate == 0.25 and sampler.respect_parent
    theirs = _create_sampler(load_config_file(ratio).tracer_provider.sampler)
    for trace_id in range(0, 1 << 64, (1 << 64) // 997):
        assert sampler.should_sample(None, trace_id, "s").decision == theirs.should_sample(None, trace_id, "s").decision


#: A file whose sampler is always_record over a parent_based sampler, its delegates to follow.
ALWAYS_RECORD = """\
file_format: "1.1"
tracer_provider:
  processors: [{simple: {exporter: {console: {}}}}]
  sampler:
    always_record:
      root:
        parent_based:
"""


@pytest.mark.parametrize("sdk_has_it", [True, False])
def test_always_record_records_what_its_root_drops_as_the_sdks_sampler_does(tmp_path, monkeypatch, sdk_has_it):
    """The specification's AlwaysRecord (stable, in the configuration schema
    since 2026; the SDK's configuration package validates it but does not
    build it): the root's decision, a drop made RECORD_ONLY with its
    attributes and trace state, the same with SDKs before the SDK's own."""
    from opentelemetry.sdk.trace import sampling

    from tracesieve import declarative

    path = write(tmp_path, ALWAYS_RECORD + "          root: {composite/development: {probability: {ratio: 0.25}}}\n")
    if not sdk_has_it:
        monkeypatch.delattr(sampling, "AlwaysRecordSampler")
        monkeypatch.setattr(declarative, "AlwaysRecordSampler", declarative._always_record_class())
        assert declarative.AlwaysRecordSampler is declarative._AlwaysRecord
    sampler = from_config(path)
    assert sampler.get_description().startswith("AlwaysRecordSampler{ParentBased{root:CompositeSampler{probability}")
    root = from_config(write(tmp_path, path.read_text().replace("    always_record:\n      root:\n", ""), "root.yaml"))
    assert root.get_description().startswith("ParentBased{root:CompositeSampler{probability}")
    decisions = {}
    rng = random.Random(5)
    for _ in range(2000):
        trace_id = rng.getrandbits(128) or 1
        ours, theirs = sampler.should_sample(None, trace_id, "GET"), root.should_sample(None, trace_id, "GET")
        expected = "RECORD_ONLY" if theirs.decision.name == "DROP" else theirs.decision.name
        assert ours.decision.name == expected
        assert ours.trace_state == theirs.trace_state and dict(ours.attributes or {}) == dict(theirs.attributes or {})
        decisions[expected] = decisions.get(expected, 0) + 1
    assert set(decisions) == {"RECORD_ONLY", "RECORD_AND_SAMPLE"} and 400 < decisions["RECORD_AND_SAMPLE"] < 600, decisions


def test_from_config_builds_a_jaeger_remote_sampler_from_the_files_section(tmp_path):
    strategy = tmp_path / "strategy.json"
    strategy.write_text(json.dumps({"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.5}}))
    path = write(
        tmp_path,
        f"""
        file_format: "1.1"
        resource: {{attributes: [{{name: service.name, value: checkout}}]}}
        tracer_provider:
          processors: [{{simple: {{exporter: {{console: {{}}}}}}}}]
          sampler:
            jaeger_remote/development:
              endpoint: file://{strategy}
              interval: 100
              initial_sampler: {{trace_id_ratio_based: {{ratio: 0.01}}}}
        """,
    )
    sampler = from_config(path)
    try:
        assert sampler.get_description().startswith("JaegerRemoteSampler{checkout")
        assert sampler.rate == 0.01, "the initial sampler's ratio, until the first strategy arrives"
        deadline = time.monotonic() + 10
        while sampler.remote_status()["updates"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sampler.remote_status()["probability"] == 0.5
    finally:
        sampler.shutdown()


@pytest.mark.parametrize(
    ("sampler", "message"),
    [
        ("{tracesieve: {}}", "tracer_provider.sampler.tracesieve: expected a tracesieve pipeline"),
        ("{parent_based: {rot: {always_on: {}}}}", "tracer_provider.sampler.parent_based.rot: unknown delegate"),
        ("{composite/development: {probability: {ratio: 2}}}", "composite/development.probability.ratio: 2 is out of range"),
        ("{always_on: {}, always_off: {}}", "expected exactly one sampler"),
        ("{tracesieve: {composite/development: {always_on: {}}, budget: {budget: 5}}}", "a composite section stands alone"),
        ("{always_record: {}}", "tracer_provider.sampler.always_record.root: missing; expected the sampler whose drops are recorded"),
        ("{always_record: {root: {always_on: {}}, ratio: 1}}", "tracer_provider.sampler.always_record.ratio: unknown setting"),
        # Regression: accepted, and did nothing but record every dropped span (the SDK builds this file's provider).
        (
            "{parent_based: {root: {tracesieve: {probability: {rate: 0.1}, tail: {decision_wait: 1.0}}}}}",
            "tracer_provider.sampler.parent_based.root.tracesieve.tail: a tail section is read by tracesieve.TracerProvider",
        ),
    ],
)
def test_mistakes_in_a_whole_file_name_the_file_and_the_path(tmp_path, sampler, message):
    path = write(tmp_path, f'file_format: "1.1"\ntracer_provider:\n  processors: []\n  sampler: {sampler}\n')
    with pytest.raises(ConfigError) as raised:
        from_config(path)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


@pytest.mark.parametrize(
    "file_format,accepted",
    [
        ('"1.0"', True),
        ('"1.1"', True),
        ('"1.0-rc.3"', True),
        ('"1"', True),
        ('"0.4"', False),
        ("1.0", False),
        ('"2.0"', False),
        ('"one"', False),
        ("1", False),
    ],
)
def test_file_format_is_a_version_of_a_major_version_this_reads(tmp_path, file_format, accepted):
    """A file of another major version was read as if it were 1.x, and any
    file_format at all (a number, a word) was taken: the SDK's own loader
    refuses all of those, and now so does tracesieve, in the same cases."""
    processors = "[{simple: {exporter: {console: {}}}}]"
    path = write(tmp_path, f"file_format: {file_format}\ntracer_provider:\n  processors: {processors}\n  sampler: {{always_on: {{}}}}\n")
    try:
        load_config_file(str(path))
        sdk_accepts = True
    except Exception:
        sdk_accepts = False
    assert sdk_accepts == accepted, "the SDK's own loader decides the same"
    if accepted:
        assert from_config(path).get_description() == "AlwaysOnSampler"
    else:
        with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: file_format: .* is not (a version string|of major version 1)"):
            from_config(path)


def test_a_key_given_twice_is_read_as_the_sdks_loader_reads_it(tmp_path):
    """tracesieve's own files refuse a key given twice; an OpenTelemetry file is
    read by the SDK's loader too, which keeps the last, and so does tracesieve
    (refusing it would leave the SDK configured and the sampler fallen back)."""
    path = write(
        tmp_path,
        """
        file_format: "1.1"
        tracer_provider:
          processors: [{simple: {exporter: {console: {}}}}]
          sampler: {trace_id_ratio_based: {ratio: 0.5}}
          sampler: {trace_id_ratio_based: {ratio: 0.25}}
        """,
    )
    assert load_config_file(str(path)).tracer_provider.sampler.trace_id_ratio_based.ratio == 0.25
    assert from_config(path).rate == 0.25


def test_tracesieve_check_validates_a_whole_file(tmp_path):
    path = write(tmp_path, PARENT_BASED)
    finished = subprocess.run([sys.executable, "-m", "tracesieve", "check", str(path)], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert "valid OpenTelemetry configuration" in finished.stdout
    assert "  root: PipelineSampler{probability}" in finished.stdout
    assert "the whole file is valid for the OpenTelemetry SDK's configuration" in finished.stdout
    assert "builds no" not in finished.stdout
    broken = write(tmp_path, PARENT_BASED.replace("processors:", "processorz:"), "broken.yaml")
    finished = subprocess.run([sys.executable, "-m", "tracesieve", "check", str(broken)], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2 and str(broken) in finished.stderr


def test_check_says_which_samplers_the_sdks_package_validates_but_does_not_build(tmp_path, capsys):
    """Regression: a file with always_record (or probability/development) was
    "valid for the OpenTelemetry SDK's configuration", and then the SDK
    refused it at start-up ("Plugin 'always_record' not found")."""
    from opentelemetry.configuration import load_config_file

    from tracesieve.cli import main

    path = write(
        tmp_path,
        ALWAYS_RECORD
        + "          root: {probability/development: {ratio: 0.1}}\n"
        + "          remote_parent_sampled: {tracesieve: {probability: {rate: 1.0}}}\n",
    )
    with pytest.raises(Exception, match="always_record"):
        _create_sampler(load_config_file(path).tracer_provider.sampler)  # what the SDK does at start-up
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  the whole file is valid for the OpenTelemetry SDK's configuration (opentelemetry-configuration), but that package "
        "builds no always_record or probability/development yet: set as OTEL_CONFIG_FILE, the file fails when the SDK starts "
        "(tracesieve.from_config builds it, and a tracesieve node in its place works with the SDK: see the declarative "
        "configuration page)"
    )


BUDGET_FILE = """
file_format: "1.1"
resource: {attributes: [{name: service.name, value: checkout}]}
tracer_provider:
  processors: [{simple: {exporter: {console: {}}}}]
  sampler:
    parent_based:
      root:
        tracesieve:
          probability: {rate: 1.0}
          budget: {budget: 100000}
      remote_parent_sampled:
        tracesieve:
          budget: {budget: 5000, name: edge}
"""

RECORDS = """
import json, os
from opentelemetry import trace
{configure}
provider = trace.get_tracer_provider()
sampler = provider.sampler
print(json.dumps([provider.resource.attributes["service.name"], sampler._root.stats()["store"]["url"],
                  sampler._remote_parent_sampled.stats()["store"]["url"]]))
"""


@pytest.mark.parametrize("configure", [SDK_PATH, ZERO_CODE], ids=["configure_sdk", "OTEL_CONFIG_FILE zero-code"])
def test_a_budget_keeps_its_record_under_the_service_the_file_names(tmp_path, private_state_dir, configure):
    """Regression: the file's resource named the service the SDK exported as
    (checkout), but a budget in a tracesieve node kept its record under the
    program's name (python-<digest>), or under OTEL_SERVICE_NAME, which the
    SDK's resource does not read when a file configures it."""
    path = write(tmp_path, BUDGET_FILE)
    environment = {**os.environ, "OTEL_CONFIG_FILE": str(path), "OTEL_SERVICE_NAME": "other"}
    finished = subprocess.run(
        [sys.executable, "-c", RECORDS.format(configure=configure)], env=environment, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    service, root, remote = json.loads(finished.stdout.strip().splitlines()[-1])
    assert service == "checkout"
    assert root == f"file://{private_state_dir / 'checkout.tracesieve'}"
    assert remote == f"file://{private_state_dir / 'edge.tracesieve'}", "a budget's own name still comes first"
    assert from_config(path)._root.stats()["store"]["url"] == root


STATE_PATH_FILE = BUDGET_FILE.replace("budget: {budget: 100000}", "budget: {budget: 100000, state_path: state/budget.json}")


@pytest.mark.parametrize("configure", [SDK_PATH, ZERO_CODE], ids=["configure_sdk", "OTEL_CONFIG_FILE zero-code"])
def test_a_relative_state_path_in_a_node_is_taken_from_the_files_folder(tmp_path, monkeypatch, capsys, configure):
    """Regression: a tracesieve node's relative budget.state_path was taken
    from the service's working directory (often /), where a tracesieve
    document's is taken from its file's folder; check did not say where it was."""
    from tracesieve.cli import main

    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(folder, STATE_PATH_FILE)
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    expected = folder / "state" / "budget.json"
    assert from_config(path)._root._state.path == expected
    program = f"{configure}\nfrom opentelemetry import trace\nprint(trace.get_tracer_provider().sampler._root._state.path)"
    finished = subprocess.run(
        [sys.executable, "-c", f"import os\n{program}"],
        env={**os.environ, "OTEL_CONFIG_FILE": str(path)},
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip().splitlines()[-1] == str(expected)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"the budget's count is saved to {expected} (every 10 s and at exit) and restored at a start" in out, out
    assert list(elsewhere.iterdir()) == []


WITH_METRICS = (
    'file_format: "1.0"'
    + CONSOLE_PROVIDER
    + """  sampler:
    tracesieve:
      probability: {rate: 0.5}
      budget: {budget: 1000000, period: month, name: checkout}
meter_provider:
  readers:
    - periodic:
        interval: 600000
        exporter:
          console: {}
"""
)

METRICS_REPORT = """
import os, sys
from opentelemetry import metrics, trace
{configure}
for _ in range(20):
    with trace.get_tracer("t").start_as_current_span("x"):
        pass
metrics.get_meter_provider().force_flush()
print(trace.get_tracer_provider().sampler.stats()["sampled"], file=sys.stderr)
"""


@pytest.mark.parametrize("configure", [SDK_PATH, ZERO_CODE], ids=["configure_sdk", "OTEL_CONFIG_FILE zero-code"])
def test_the_files_meter_provider_receives_the_samplers_metrics(tmp_path, configure):
    """The SDK builds the sampler before it sets the file's meter provider:
    the sampler's instruments used to report nowhere."""
    environment = {**os.environ, "OTEL_CONFIG_FILE": str(write(tmp_path, WITH_METRICS))}
    finished = subprocess.run(
        [sys.executable, "-c", METRICS_REPORT.format(configure=configure)], env=environment, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    decoder, text, points = json.JSONDecoder(), finished.stdout.strip(), {}
    while text:  # the console exporters' spans and metrics, one JSON document after another
        document, end = decoder.raw_decode(text)
        text = text[end:].strip()
        for resource in document.get("resource_metrics", []):
            for scope in resource["scope_metrics"]:
                for metric in scope["metrics"]:
                    for point in metric["data"]["data_points"]:
                        points[(metric["name"], tuple(sorted(point["attributes"].items())))] = point["value"]
    sampled = int(finished.stderr.split()[-1])
    assert points[("tracesieve.sampler.decisions", (("outcome", "sampled"),))] == sampled
    assert ("tracesieve.budget.spans", (("state", "used"),)) in points
