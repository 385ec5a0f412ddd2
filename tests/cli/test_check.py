"""tracesieve check and explain: the compiled plan in plain words, and the walk
of one span through it."""

from __future__ import annotations

import pytest

from tracesieve import BudgetSampler, from_config
from tracesieve.cli import main

from helpers import EXAMPLES


def test_check_prints_the_policy_in_plain_words(capsys):
    assert main(["check", str(EXAMPLES / "example_pipeline.toml")]) == 0
    out = capsys.readouterr().out
    assert "valid pipeline (PipelineSampler{force_keep,adaptive,rules,budget})" in out
    assert "payment: business.event is 'payment'" in out
    assert "high-value: payment.amount is above 1000" in out
    assert "more than 5 errors in 300 s gives x2.0" in out
    assert "budget: 50,000 spans per month (Asia/Seoul)" in out


def test_explain_names_the_rule_and_probability(capsys):
    config = str(EXAMPLES / "example_pipeline.toml")
    assert (
        main(
            [
                "explain",
                config,
                "--name",
                "GET",
                "--attr",
                "http.route=/api/order",
                "--attr",
                "user.tier=free",
                "--at",
                "2026-01-15T12:00:00+09:00",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "rule 'order-api' (route '/api/order'): probability 0.225" in out
    assert main(["explain", config, "--name", "POST", "--attr", "payment.amount=5000"]) == 0
    assert "force_keep rule 'high-value' keeps it" in capsys.readouterr().out
    assert main(["explain", config, "--name", "GET", "--attr", "http.route=/x", "--child"]) == 0
    assert "follows the parent's decision" in capsys.readouterr().out


def test_explain_writes_th_at_the_configurations_precision(tmp_path, capsys):
    """Regression: explain printed th:b3333 where the sampler writes th:b3."""
    config = tmp_path / "short.toml"
    config.write_text("precision = 2\n[probability]\nrate = 0.3\n")
    assert main(["explain", str(config), "--name", "GET"]) == 0
    out = capsys.readouterr().out
    assert "th:b3 (" in out and "b333" not in out


def test_check_recognises_a_rules_file_and_an_empty_file_is_refused(tmp_path, capsys):
    assert main(["check", str(EXAMPLES / "api_with_health_checks.toml")]) == 0
    out = capsys.readouterr().out
    assert "valid rules file for OTEL_TRACES_SAMPLER=tracesieve_rules" in out
    assert "health-checks: drop when the route is one of ['/healthz', '/readyz', '/livez']" in out
    empty = tmp_path / "empty.toml"
    empty.write_text("# to do\n")
    assert main(["check", str(empty)]) == 2
    assert "empty.toml: empty; expected at least one stage or setting" in capsys.readouterr().err


def test_a_rules_file_given_as_a_pipeline_names_the_right_entry_point(tmp_path, capsys):
    """Regression: a rules file used as a pipeline said "default_rate: unknown
    stage or setting"; the reverse said "record_rule: unknown key"."""
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text((EXAMPLES / "api_with_health_checks.toml").read_text())
    assert main(["simulate", "traffic", "--requests", "10", "--config", str(rules_file)]) == 2
    err = capsys.readouterr().err
    assert "this looks like a rules file" in err and "OTEL_TRACES_SAMPLER=tracesieve_rules" in err


BUDGET_PIPELINE = "[probability]\nrate = 0.5\n[budget]\nbudget = 100000\n"


def test_check_and_explain_read_a_services_record_but_never_make_one(tmp_path, private_state_dir, monkeypatch, capsys):
    """Regression: check and explain attached to a host record named after
    themselves (tracesieve.tracesieve), making the state directory and the file,
    and check said the budget was "recorded on this host in" that file, which no
    service uses. Attached to a service's record, they added their own budget
    to it. Now they read a copy."""
    config = tmp_path / "sampling.toml"
    config.write_text(BUDGET_PIPELINE)
    state = private_state_dir / "fresh"
    monkeypatch.setenv("TRACESIEVE_STATE_DIR", str(state))
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)

    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"state (budget) recorded on this host in {state}/<service>.tracesieve: shared by every process" in out
    assert "<service>: the budget's name, else OTEL_SERVICE_NAME" in out
    assert "spent this month" not in out, "no record read, nothing spent to tell"
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("the budget's pace is a first start's: no service is named")
    assert not state.exists()

    # Named, but the service has not started yet: still nothing made.
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    assert main(["check", str(config)]) == 0
    assert f"{state}/checkout.tracesieve: not made yet; the service makes it when it first starts" in capsys.readouterr().out
    assert not state.exists()

    # The service's own record, once it exists, is the one both read.
    service = from_config(str(config))
    record = state / "checkout.tracesieve"
    assert service.stats()["store"]["url"] == f"file://{record}"
    before = record.read_bytes()
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"state (budget) recorded on this host in {record}: shared" in out and "not made yet" not in out
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"the budget's pace was read from the service's record, {record}"
    # A budget the record does not hold (other settings): said so, and still nothing written.
    other = tmp_path / "other.toml"
    other.write_text(BUDGET_PIPELINE.replace("100000", "5000"))
    assert main(["explain", str(other), "--name", "GET"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"the budget's pace is a first start's: the service's record, {record}, has no budget with these settings"
    assert main(["check", str(other)]) == 0
    assert f"{record}: has no budget with these settings yet" in capsys.readouterr().out
    assert record.read_bytes() == before and sorted(p.name for p in state.iterdir()) == ["checkout.tracesieve"]


@pytest.mark.parametrize("content", [b"tsieve", b"\x00" * 70_000, b"precious notes\n"])
def test_a_services_record_the_store_cannot_use_is_said_so_not_read_as_its_spending(
    tmp_path, private_state_dir, monkeypatch, capsys, content
):
    """Regression: a record the store could not use (truncated, zeroed, another
    tool's file at its path) was "read": check printed a first start's
    assumed count as what "the service's record" had spent, and explain said
    its pace "was read from the service's record". The service cannot use it
    either: each process keeps its own budget, which is what check now says."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    config = tmp_path / "sampling.toml"
    config.write_text(BUDGET_PIPELINE)
    record = private_state_dir / "checkout.tracesieve"
    record.write_bytes(content)
    record.chmod(0o600)
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "spent this month" not in out, out
    said = [line for line in out.splitlines() if "the service's record cannot be used" in line]
    assert len(said) == 1 and said[0].startswith(
        f"  the service's record cannot be used, by check or by the service: {record} is not a tracesieve store"
    )
    assert said[0].endswith("each of the service's processes keeps a budget of its own until the file is removed")
    assert "tracesieve-" not in out, "the copy's path is never shown"
    assert main(["explain", str(config), "--name", "GET"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"the budget's pace is a start's with no record: the service's record cannot be used: {record} is not"), last
    assert record.read_bytes() == content
    # The service says the same of it, and keeps its budget per process.
    assert from_config(str(config)).stats()["store"]["shared"] == []


def _split(status):
    """A budget's share spent, with the count it began with told apart from what it counted since."""
    assumed = status["assumed_spans"]
    return f"{status['percent_used']:.1f}%: {assumed:,} it began with, {status['used_spans'] - assumed:,} counted since"


def test_check_lists_the_other_budgets_a_services_record_holds_with_their_spending(tmp_path, private_state_dir, monkeypatch, capsys):
    """A budget changed by a restart starts a new count in the service's
    record: check says so, and what the budgets already there have spent,
    so an operator who lowered 100,000 to 5,000 sees the 100,000's count
    does not carry on. Only those that spent most are listed."""
    import random

    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    config = tmp_path / "sampling.toml"
    config.write_text(BUDGET_PIPELINE)
    service = from_config(str(config))
    rng = random.Random(3)
    for _ in range(500):
        service.should_sample(None, rng.getrandbits(128), "GET")
    spent = service.budget_status()
    daily = BudgetSampler(1.0, budget=7_000, period="day", timezone="Asia/Seoul", downstream="follow", cap_forced_keeps=True)
    day_spent = daily.budget_status()
    record = private_state_dir / "checkout.tracesieve"
    before = record.read_bytes()
    other = tmp_path / "other.toml"
    other.write_text(BUDGET_PIPELINE.replace("100000", "5000"))
    assert main(["check", str(other)]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index(f"  {record}: has no budget with these settings yet; the service adds one when it starts with them")
    assert out[at + 1 :] == [
        "    it holds the service's other budgets, each counted apart: a restart with changed settings counts afresh "
        "from the calendar's share, where a reload carries the count over",
        f"    - 100,000 spans per month (UTC): {spent['used_spans']:,} spent this month ({_split(spent)})",
        f"    - 7,000 spans per day (Asia/Seoul), keep rules capped, downstream follow: {day_spent['used_spans']:,} spent today "
        f"({_split(day_spent)})",
    ]
    assert spent["used_spans"] > day_spent["used_spans"], "listed by what they spent, most first"
    # The budgets there are read, never written; a budget the record holds lists none.
    assert record.read_bytes() == before
    assert main(["check", str(config)]) == 0
    assert "other budgets" not in capsys.readouterr().out
    # Many: those that spent most, then how many more.
    for budget in range(10):
        BudgetSampler(1.0, budget=1_000 + budget, period="day")
    assert main(["check", str(other)]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = out[
        out.index(
            "    it holds the service's other budgets, each counted apart: a restart with changed settings counts afresh "
            "from the calendar's share, where a reload carries the count over"
        )
        + 1 :
    ]
    assert len(listed) == 6 and listed[0].startswith("    - 100,000 spans per month") and listed[-1] == "    and 7 more, which spent less"


def test_explain_and_check_show_the_pace_and_spending_the_services_record_is_at(tmp_path, private_state_dir, monkeypatch, capsys):
    """Regression: explain read the record's line at a monotonic time equal to
    the wall time, decades on, so a service at its budget's limit was shown
    pacing 1 (every span of this kind kept with probability 0.5). check says
    what the record has spent."""
    import random

    config = tmp_path / "sampling.toml"
    config.write_text(BUDGET_PIPELINE)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    service = from_config(str(config))
    rng = random.Random(5)
    kept = 0
    for _ in range(2_000):  # a first start's burst is 139 spans: past it at once
        kept += service.should_sample(None, rng.getrandbits(128), "GET").decision.is_sampled()
    pace_line = "times the budget's pacing probability: "

    def pace(lines):
        return float(next(line for line in lines if line.startswith(pace_line)).removeprefix(pace_line))

    live = pace(service.explain("GET")["lines"])
    assert main(["explain", str(config), "--name", "GET"]) == 0
    shown = pace(capsys.readouterr().out.splitlines())
    assert live < 0.5 and abs(shown - live) <= 0.05, (live, shown)
    # A month on, with nothing decided since, the next decision starts a new period: pacing 1.
    from datetime import datetime, timedelta, timezone

    month_on = (datetime.now(timezone.utc) + timedelta(days=40)).isoformat()
    assert main(["explain", str(config), "--name", "GET", "--at", month_on]) == 0
    assert pace(capsys.readouterr().out.splitlines()) == 1.0
    # check says what the record has spent this period: the count a new record began with
    # (the calendar's share, mid-month) apart from what was counted since.
    spent = service.budget_status()
    assert main(["check", str(config)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    used, assumed = spent["used_spans"], spent["assumed_spans"]
    assert used - assumed == kept
    began = (
        f": {assumed:,} it began with, the calendar's share a new record takes as spent or a count carried over, "
        f"and {used - assumed:,} counted since"
        if assumed  # nothing, in a month's first second
        else ""
    )
    assert line.startswith(
        f"  spent this month so far, as the service's record stands: {used:,} of 100,000 spans "
        f"({spent['percent_used']:.1f}%{began}), 0 refused by the head, 0 by the tail; the pacing probability now "
    ), line


def test_check_reads_a_record_whose_period_ended_as_the_new_period(tmp_path, private_state_dir, monkeypatch, capsys):
    """A service that last ran in the last second of last month: its record
    rolls over at its next decision, and check reads it as that decision will
    find it: this month, nothing spent. (Its budget_status() showed last
    month's spending until then, and so did the budget's gauge.)"""
    import random
    import time
    from datetime import datetime, timezone

    from tracesieve.testing import SimClock

    config = tmp_path / "sampling.toml"
    config.write_text('store = "host"\n' + BUDGET_PIPELINE)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    today = datetime.now(timezone.utc)
    this_month = datetime(today.year, today.month, 1, tzinfo=timezone.utc).timestamp()
    if time.time() - this_month < 5:
        time.sleep(5)  # the month must have begun on the monotonic clock too
    clock = SimClock(this_month - 1)
    clock.advance(time.monotonic())  # the host's monotonic clock, which check reads the record by
    clock.jump(-time.monotonic())
    service = from_config(str(config), clock=clock)
    rng = random.Random(3)
    for _ in range(100):
        service.should_sample(None, rng.getrandbits(128), "GET")
    assert service.budget_status()["used_spans"] > 0, "last month's spending"
    assert main(["check", str(config)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line == (
        "  spent this month so far, as the service's record stands: 0 of 100,000 spans (0.0%), "
        "0 refused by the head, 0 by the tail; the pacing probability now 1"
    )


def test_check_and_explain_never_save_a_state_file_they_restored(tmp_path, monkeypatch, capsys):
    """A budget with state_path read by check or explain restored the
    service's state file and, had its sampler lived to the process's exit,
    saved it back there: a stale count over the service's newer one, which
    the service would then spend again. Read only, the state file is restored
    and never saved."""
    import random

    from tracesieve import state
    from tracesieve.cli.records import reading_only

    saved = tmp_path / "state" / "budget.json"
    config = tmp_path / "sampling.toml"
    config.write_text(BUDGET_PIPELINE + f'state_path = "{saved}"\n')
    service = from_config(str(config))
    rng = random.Random(2)
    for _ in range(300):
        service.should_sample(None, rng.getrandbits(128), "GET")
    spent = service.budget_status()["used_spans"]
    service.close()  # a last save, and the service stops saving
    before = saved.read_bytes()
    with reading_only():
        reader = from_config(str(config))
        assert reader.budget_status()["used_spans"] == spent, "the state file was restored"
        for _ in range(300):
            reader.should_sample(None, rng.getrandbits(128), "GET")
        reader.save_state()
        state._save_at_exit()  # what runs at the process's exit
        assert main(["explain", str(config), "--name", "GET"]) == 0
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["budget.json"]
    capsys.readouterr()


def test_check_says_where_a_state_file_keeps_the_count_and_what_it_has_spent(tmp_path, monkeypatch, capsys):
    """A budget with state_path: check names the file (a relative path read
    from the configuration's folder, as the service reads it, not from where
    check runs) and says what it has spent as the file stands."""
    import json
    import random

    config = tmp_path / "conf" / "sampling.toml"
    config.parent.mkdir()
    config.write_text(BUDGET_PIPELINE + 'state_path = "state/budget.json"\n')
    saved = tmp_path / "conf" / "state" / "budget.json"
    monkeypatch.chdir(tmp_path)
    said = f"  the budget's count is saved to {saved} (every 10 s and at exit) and restored at a start"
    assert main(["check", str(config.relative_to(tmp_path))]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [said, f"  {saved}: not made yet; the service makes it when it first saves"]
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"the budget's pace is a first start's: its state file, {saved}, is not made yet"

    service = from_config(str(config))
    rng = random.Random(4)
    for _ in range(300):
        service.should_sample(None, rng.getrandbits(128), "GET")
    spent = service.budget_status()
    service.close()
    before = saved.read_bytes()
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == said
    assert out[-1].startswith(
        f"  spent this month so far, as the state file stands: {spent['used_spans']:,} of 100,000 spans ({spent['percent_used']:.1f}%), "
    ), out[-1]
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"the budget's pace was read from its state file, {saved}"
    assert saved.read_bytes() == before

    # A file from an earlier month holds nothing of this one.
    data = json.loads(before)
    data["period_start"] -= 40 * 86_400
    saved.write_text(json.dumps(data))
    assert main(["check", str(config)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"  {saved}: holds no count of this month: it is an earlier month's, or was not read (a warning says why)"
    assert main(["explain", str(config), "--name", "GET"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"the budget's pace is a start's with no record: its state file, {saved}, holds no count of this period"


@pytest.mark.parametrize(
    "store, said",
    [
        (
            "memory",
            "the budget's pace is a start's with no record: store = \"memory\" keeps none, so each process starts on its start allowance",
        ),
        # Nothing listens there: the fleet's count is not read, and explain says so.
        (
            "redis://127.0.0.1:9/0",
            "the budget's pace is this process's at a start: explain joins no fleet, so the pace its members have is not known here\n"
            "the fleet's count this month was not read from Redis: ConnectionError: Error 111 connecting to 127.0.0.1:9. Connection refused.",
        ),
    ],
)
def test_explain_says_where_the_pace_of_a_budget_with_no_host_record_came_from(tmp_path, capsys, store, said):
    config = tmp_path / "sampling.toml"
    config.write_text(f'store = "{store}"\n' + BUDGET_PIPELINE)
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert capsys.readouterr().out.splitlines()[-len(said.splitlines()) :] == said.splitlines()


OTEL_BUDGET_CONFIG = """file_format: "1.1"
resource:
  attributes:
    - {name: service.name, value: checkout}
tracer_provider:
  processors:
    - batch: {exporter: {console: {}}}
  sampler:
    parent_based:
      root:
        tracesieve:
          rules: {rules: [], default_rate: 0.5}
          budget: {budget: 100000, period: month}
"""


def test_check_of_an_opentelemetry_file_says_what_the_services_record_spent(tmp_path, private_state_dir, monkeypatch, capsys):
    import random

    from tracesieve.declarative import from_otel_config

    config = tmp_path / "otel.yaml"
    config.write_text(OTEL_BUDGET_CONFIG)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)  # the file's resource names the service
    assert main(["check", str(config)]) == 0
    assert "spent this month" not in capsys.readouterr().out, "the service has no record yet"
    service = from_otel_config(str(config))
    rng = random.Random(7)
    for _ in range(500):
        service.should_sample(None, rng.getrandbits(128), "GET")
    spent = service._root.budget_status()  # type: ignore[attr-defined]
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"spent this month so far, as the service's record stands: {spent['used_spans']:,} of 100,000 spans" in out, out
    assert (private_state_dir / "checkout.tracesieve").exists()


def test_explain_walks_an_opentelemetry_files_parent_based_sampler(tmp_path, private_state_dir, monkeypatch, capsys):
    """Regression: explain refused the documented OpenTelemetry file (a
    parent_based sampler with tracesieve at its root) as "not tracesieve's;
    nothing to explain". A root span is walked through the root sampler, at
    the pace the service's record is at; a child is shown for each kind of
    parent, by the delegate that decides it."""
    import random

    from tracesieve.declarative import from_otel_config

    config = tmp_path / "otel.yaml"
    config.write_text(OTEL_BUDGET_CONFIG)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    service = from_otel_config(str(config))
    rng = random.Random(7)
    for _ in range(2_000):  # past a first start's burst: paced
        service.should_sample(None, rng.getrandbits(128), "GET")
    live = service._root.explain("GET", {})["lines"]  # type: ignore[attr-defined]
    assert main(["explain", str(config), "--name", "GET"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ParentBased: a span with no parent goes to its root sampler, PipelineSampler{rules,budget}"
    assert out[1] == f"  {live[0]}" and out[2].startswith("  times the budget's pacing probability: 0.")
    assert out[-1] == f"the budget's pace was read from the service's record, {private_state_dir / 'checkout.tracesieve'}"
    assert main(["explain", str(config), "--name", "GET", "--child"]) == 0
    assert capsys.readouterr().out.splitlines()[:9] == [
        "ParentBased: a span with a parent goes to the sampler for its parent:",
        "  remote_parent_sampled (a sampled parent from another process): AlwaysOnSampler",
        "    so: kept (the SDK's sampler: no th)",
        "  remote_parent_not_sampled (a parent from another process, not sampled): AlwaysOffSampler",
        "    so: dropped",
        "  local_parent_sampled (a sampled parent in this process): AlwaysOnSampler",
        "    so: kept (the SDK's sampler: no th)",
        "  local_parent_not_sampled (a parent in this process, not sampled): AlwaysOffSampler",
        "    so: dropped",
    ]
    # A composite delegate is walked too, its rules counted from 1 as the file lists them.
    composite = tmp_path / "composite.yaml"
    composite.write_text(
        OTEL_BUDGET_CONFIG
        + """      remote_parent_sampled:
        tracesieve:
          composite/development:
            rule_based:
              rules:
                - attribute_values: {key: http.route, values: [/health]}
                  sampler: {always_off: {}}
                - sampler: {parent_threshold: {root: {always_on: {}}}}
"""
    )
    assert main(["explain", str(composite), "--name", "GET", "--attr", "http.route=/health", "--child"]) == 0
    assert capsys.readouterr().out.splitlines()[1:4] == [
        "  remote_parent_sampled (a sampled parent from another process): CompositeSampler{rule_based}",
        "    rule_based: rule 1 of 2 matches ('http.route' in ['/health'])",
        "    always_off drops it",
    ]


@pytest.mark.parametrize(
    "sampler, said",
    [
        (
            "trace_id_ratio_based: {ratio: 0.25}",
            "TraceIdRatioSampler{0.25,respect_parent=False} decides every span alike: kept with probability 0.25",
        ),
        ("always_off: {}", "AlwaysOffSampler decides every span alike: dropped"),
        (
            "parent_based: {root: {always_on: {}}, remote_parent_sampled: "
            '{jaeger_remote/development: {endpoint: "http://127.0.0.1:1", initial_sampler: {always_on: {}}}}}',
            "ParentBased: a span with no parent goes to its root sampler, AlwaysOnSampler",
        ),
    ],
)
def test_explain_of_the_sdks_samplers_and_of_a_delegate_it_does_not_walk(tmp_path, capsys, sampler, said):
    config = tmp_path / "otel.yaml"
    config.write_text(f'file_format: "1.1"\ntracer_provider:\n  processors: []\n  sampler:\n    {sampler}\n')
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(said)
    if "jaeger" in sampler:  # a delegate explain does not walk is named, and said to be
        assert main(["explain", str(config), "--name", "GET", "--child"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[1].startswith("  remote_parent_sampled (a sampled parent from another process): JaegerRemoteSampler{")
        assert out[2] == "    it decides as it will; explain does not walk it"


@pytest.mark.parametrize(
    "sampler, root_said, child_said",
    [
        # Regression: a child was said to be kept with probability 0.25, though ParentBased follows the parent.
        (
            "parent_based: {root: {trace_id_ratio_based: {ratio: 0.25}}}",
            [
                "TraceIdRatioSampler{0.25}, the SDK's ParentBased(TraceIdRatioBased) natively: a span with no parent is kept "
                "with probability 0.25 (the SDK's sampler: no th)"
            ],
            [
                "TraceIdRatioSampler{0.25}, the SDK's ParentBased(TraceIdRatioBased) natively: a span with a parent follows it: "
                "kept when the parent was sampled, dropped when not"
            ],
        ),
        (
            "always_record: {root: {trace_id_ratio_based: {ratio: 0.25}}}",
            [
                "AlwaysRecord: every span is recorded for the processors; one its root, TraceIdRatioSampler{0.25,respect_parent=False}, "
                "drops is RECORD_ONLY (never exported)",
                "TraceIdRatioSampler{0.25,respect_parent=False} decides every span alike: kept with probability 0.25 (the SDK's sampler: no th)",
            ],
            None,
        ),
    ],
)
def test_explain_says_how_a_parent_based_ratio_and_always_record_decide(tmp_path, capsys, sampler, root_said, child_said):
    config = tmp_path / "otel.yaml"
    config.write_text(f'file_format: "1.1"\ntracer_provider:\n  processors: []\n  sampler:\n    {sampler}\n')
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert capsys.readouterr().out.splitlines() == root_said
    if child_said is not None:
        assert main(["explain", str(config), "--name", "GET", "--child"]) == 0
        assert capsys.readouterr().out.splitlines() == child_said


def test_check_and_explain_read_no_record_the_store_would_refuse(tmp_path, private_state_dir, monkeypatch, capsys):
    """A copy is this user's and private whatever the original was, so the
    store's checks (a regular file, this user's, private) are made on the
    original: a record readable by others, or a link, is not read."""
    config = tmp_path / "sampling.toml"
    config.write_text(BUDGET_PIPELINE)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    from_config(str(config))
    record = private_state_dir / "checkout.tracesieve"
    record.chmod(0o644)
    assert main(["explain", str(config), "--name", "GET"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert (
        last
        == f"the budget's pace is a first start's: {record} was not read: it is not a private file of this user (a link, a pipe or device, another user's, or open to others)"
    )
    record.chmod(0o600)
    record.rename(private_state_dir / "elsewhere")
    record.symlink_to(private_state_dir / "elsewhere")
    assert main(["check", str(config)]) == 0
    assert f"{record}: not read: it is not a private file of this user" in capsys.readouterr().out


def test_check_and_explain_read_a_record_that_went_on_in_an_overflow_file(tmp_path, private_state_dir, monkeypatch, capsys):
    """A service whose budget changed 64 times keeps its 65th in checkout+2.tracesieve:
    check names that file, explain reads the pace there, and neither writes a byte."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    for change in range(64):
        BudgetSampler(1.0, budget=10**9 + change)
    config = tmp_path / "sampling.toml"
    config.write_text(BUDGET_PIPELINE)
    from_config(str(config))
    overflow = private_state_dir / "checkout+2.tracesieve"
    files = {path: path.read_bytes() for path in private_state_dir.iterdir()}
    assert sorted(path.name for path in files) == ["checkout+2.tracesieve", "checkout.tracesieve"]
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"state (budget) recorded on this host in {overflow}: shared" in out and "has no budget" not in out, out
    assert main(["explain", str(config), "--name", "GET"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"the budget's pace was read from the service's record, {private_state_dir / 'checkout.tracesieve'}"
    # Settings no file holds yet: the copies grow (a third file), the originals do not.
    other = tmp_path / "other.toml"
    other.write_text(BUDGET_PIPELINE.replace("100000", "5000"))
    for change in range(64, 64 + 63):
        BudgetSampler(1.0, budget=10**9 + change)
    files = {path: path.read_bytes() for path in private_state_dir.iterdir()}
    assert main(["check", str(other)]) == 0
    out = capsys.readouterr().out
    assert f"{private_state_dir / 'checkout.tracesieve'}: has no budget with these settings yet" in out, out
    assert f"recorded on this host in {private_state_dir / 'checkout+3.tracesieve'}" in out, out
    assert {path: path.read_bytes() for path in private_state_dir.iterdir()} == files


def test_check_reads_a_fleets_count_from_redis_writing_nothing(tmp_path, capsys):
    """A budget on a Redis fleet: check reads the fleet's count this period
    and the leases held (a script that writes nothing), says when there is
    none, when it is garbage or another budget's, and when Redis cannot be
    reached, never showing the password."""
    import random

    from tracesieve import fleet
    from tracesieve.local_redis import RedisServer

    server = RedisServer(password="s3cr3t-pw").start()
    try:
        config = tmp_path / "fleet.toml"
        config.write_text(f'store = "{server.url}?interval=0#shop"\n' + BUDGET_PIPELINE)

        def said() -> str:
            assert main(["check", str(config)]) == 0
            out = capsys.readouterr().out
            assert "s3cr3t-pw" not in out
            return out.splitlines()[-1]

        assert said() == "  the fleet has no count in Redis this month yet: none of its processes has stepped this month"
        client = server.client()
        assert client.keys("*") == [], "check wrote nothing"
        service = from_config(str(config))
        fleet.sync(service)
        rng = random.Random(2)
        for _ in range(300):
            service.should_sample(None, rng.getrandbits(128), "GET")
        fleet.sync(service)
        [key] = client.keys("*")
        before = client.hgetall(key)
        used = int(float(before[b"used"]))
        held = service.stats()["store"]["fleet"]["budget"]["lease_left"]
        assert (
            said()
            == f"  the fleet's count in Redis this month: {used:,} of 100,000 spans ({used / 1000:.1f}%); 1 process holding leases of {held:,} spans more"
        )
        assert client.hgetall(key) == before, "check wrote nothing"
        # explain says the same of the fleet beside the walk (before, it said only that it did not read Redis)
        assert main(["explain", str(config), "--name", "GET"]) == 0
        explained = capsys.readouterr().out.splitlines()
        assert explained[-1] == said().strip() and "s3cr3t-pw" not in "\n".join(explained)
        assert client.hgetall(key) == before, "explain wrote nothing"
        client.hset(key, "used", "1e308")
        assert (
            said() == "  the fleet's count in Redis this month is no count (written by something else); the next process to step repairs it"
        )
        other = tmp_path / "other.toml"
        other.write_text(config.read_text().replace("100000", "5000"))
        seconds, micros = client.time()
        client.hset(key, "m:live", f"1 {seconds * 1000 + micros // 1000 + 60_000} 0")  # a lease under these settings, live a minute
        assert main(["check", str(other)]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == (
            "  the fleet's budget in Redis is held with other settings (budget=100000 spans, period=month, timezone=UTC, "
            "cap_forced_keeps=false, downstream=pace): processes with these settings treat the fleet as down, each on its fallback share, "
            "until no process with those holds a lease, then take its count over"
        )
        wrong = tmp_path / "wrong.toml"
        wrong.write_text(config.read_text().replace("s3cr3t-pw", "wr0ng-pw"))
        assert main(["check", str(wrong)]) == 0
        last = capsys.readouterr().out.splitlines()[-1]
        assert last.startswith("  the fleet's count this month was not read from Redis: ") and "wr0ng-pw" not in last, last
    finally:
        server.stop()
    assert said().startswith("  the fleet's count this month was not read from Redis: ConnectionError")


def test_check_and_explain_never_join_a_redis_fleet(tmp_path, capsys, redis_server):
    """Regression: explain and check built the pipeline's samplers as a
    service does, so those on a Redis fleet joined it: within a step, the
    fleet's count for the period was made (the calendar's share, when no
    service had stepped yet) and a lease of spans taken by a process that
    then went away. Samplers they build join no fleet."""
    import time

    from tracesieve import fleet

    config = tmp_path / "fleet.toml"
    config.write_text(f'store = "{redis_server.url}?interval=0.05#shop"\n' + BUDGET_PIPELINE.replace("[budget]", "[adaptive]\n[budget]"))
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert main(["check", str(config)]) == 0
    capsys.readouterr()
    time.sleep(0.5)  # ten steps of a fleet member
    fleet.sync()
    assert redis_server.client().keys("*") == [], "check and explain wrote nothing"
    # A service built after them joins as ever.
    service = from_config(str(config))
    fleet.sync(service)
    assert redis_server.client().keys("*") != []


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("decison_wait = 1.0", 'tail.decison_wait: unknown tail setting (did you mean "decision_wait"?)'),
        ("decision_wait = -5", "tail.decision_wait: -5 is out of range"),
        ("latency_probability = 7", "tail.latency_probability: 7 is out of range"),
        ('rules = [{ name = "x", rate = 0.5 }]', "tail.rules[0]"),
        ('share = "redis://127.0.0.1:9/0"\nshare_interval = 50', "tail.share_interval: 50 is out of range"),
        ('budget_priorities = ["errors"]', "tail.budget_priorities"),
        ('share = "redis://app:s3cret@127.0.0.1:6379/0?bogus=1"', "tail.share: the Redis client does not take redis://app:***@"),
    ],
)
def test_check_refuses_a_tail_section_the_provider_would_refuse(tmp_path, capsys, tail, message):
    """Regression: check called a document valid whatever its tail section
    held, which TracerProvider.from_config then refused (the zero-code
    provider falling back to its 1% sample)."""
    from tracesieve import TracerProvider
    from tracesieve.config import ConfigError

    config = tmp_path / "sampling.toml"
    config.write_text(f"[probability]\nrate = 0.1\n[tail]\n{tail}\n")
    with pytest.raises(ConfigError) as provider_said:
        TracerProvider.from_config(config)
    assert main(["check", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(provider_said.value).split(": ", 1)[1] in err, (err, provider_said.value)
    assert "s3cret" not in err


def test_check_says_who_reads_a_valid_tail_section_and_reaches_no_redis(tmp_path, capsys, caplog):
    import threading

    config = tmp_path / "sampling.toml"
    config.write_text('[probability]\nrate = 0.1\n[tail]\ndecision_wait = 1.0\nshare = "redis://127.0.0.1:9/0"\n')
    before = set(threading.enumerate())
    assert main(["check", str(config)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  the tail section is read by tracesieve.TracerProvider (TracerProvider.from_config, or "
        "OTEL_PYTHON_TRACER_PROVIDER=tracesieve with TRACESIEVE_CONFIG), not by OTEL_TRACES_SAMPLER=tracesieve"
    )
    assert "cannot reach" not in caplog.text and set(threading.enumerate()) <= before


def test_explain_says_what_the_tail_section_keeps_after_the_fact(tmp_path, capsys):
    """Regression: explain answered only for the head ("kept with probability
    0.1") for a span a tail rule of the same file keeps whole."""
    config = tmp_path / "sampling.toml"
    config.write_text(
        "[rules]\ndefault_rate = 0.1\nrules = []\n[budget]\nbudget = 100000\n[tail]\nlatency_threshold = 2.0\n"
        'latency_probability = 0.5\nbudget_exempt = ["error"]\nrules = [{ name = "premium", match = { "user.tier" = "premium" } }]\n'
    )
    tail = [
        "then, with tracesieve.TracerProvider reading the tail section, its trace is kept whole after the fact, "
        "whatever the head decided, when:",
        "  - any span of it has an error",
        "  - its local root lasts 2 s or more, with probability 0.5",
    ]
    spend = (
        "  these keeps spend the budget too: when it cannot cover them all, error before latency before rule keeps "
        "(budget_priorities); error keeps are exempt (kept over it)"
    )
    for tier, matched in (("premium", "rule 'premium' matches these attributes: kept whole"), ("free", "no rule matches these attributes")):
        assert main(["explain", str(config), "--name", "GET", "--attr", f"user.tier={tier}"]) == 0
        out = capsys.readouterr().out.splitlines()
        at = out.index(tail[0])
        assert out[at : at + 5] == [*tail, f"  - a tail rule matches its local root's attributes as the root ends ({matched})", spend]
    config.write_text("[rules]\ndefault_rate = 0.1\nrules = []\n")
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert "after the fact" not in capsys.readouterr().out


def test_check_and_explain_read_a_file_store_the_configuration_names_but_never_make_or_write_it(tmp_path, capsys):
    """Regression: with store = "file:///...", check and explain opened the
    store itself: they made the file when it was missing (and would have
    added a piece to a live one), where the host record was only ever read
    through a copy. Now a file store is read through a copy too, and what
    they print (errors included) names the store's own path."""
    import random

    store = tmp_path / "shared.tracesieve"
    config = tmp_path / "sampling.toml"
    config.write_text(
        f'store = "file://{store}"\n[probability]\nrate = 0.5\n[budget]\nbudget = 100000\n[rate_limit]\ntraces_per_second = 100\n'
    )
    assert main(["check", str(config)]) == 0
    assert f"naming file://{store}" in capsys.readouterr().out
    assert main(["explain", str(config), "--name", "GET"]) == 0
    capsys.readouterr()
    assert not store.exists(), "nothing made"
    service = from_config(str(config))
    rng = random.Random(4)
    for _ in range(400):
        service.should_sample(None, rng.getrandbits(128), "GET")
    status = service.budget_status()
    before = store.read_bytes()
    assert main(["check", str(config)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"  spent this month so far, as the store file stands: {status['used_spans']:,} of 100,000 spans"), last
    assert main(["explain", str(config), "--name", "GET"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"the budget's pace was read from the store file, {store}"
    # Other settings than the file holds: the service would refuse them, and so does check, naming the store.
    other = tmp_path / "other.toml"
    other.write_text(config.read_text().replace("100000", "5000"))
    assert main(["check", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"store: {store} holds the budget" in err and "tracesieve-" not in err, err
    assert store.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "other.toml",
        "sampling.toml",
        "shared.tracesieve",
    ]
