"""Configuration files are untrusted data: loading is bounded in size, depth,
YAML aliases and time, every mistake is a ConfigError naming the file and the
key, and the reload thread survives any file."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracesieve import ConfigError, PipelineSampler, from_config, load_config


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "name,text",
    [
        ("deep.json", "[" * 5000 + "]" * 5000),
        ("deep.toml", "a = " + "[" * 5000 + "]" * 5000),
        ("deep.yaml", "a: " + "[" * 5000 + "]" * 5000),
        (
            "nested.json",
            json.dumps({"rules": {"rules": [{"match": {"a": {"in": ["NESTED"]}}}]}}).replace('"NESTED"', "[" * 40 + "1" + "]" * 40),
        ),
    ],
)
def test_deep_nesting_is_a_config_error_naming_the_file(tmp_path, name, text):
    """Regression: deeply nested JSON, TOML or YAML raised RecursionError."""
    path = write(tmp_path / name, text)
    with pytest.raises(ConfigError, match=rf"^{tmp_path / name}: nested"):
        load_config(path)


@pytest.mark.timeout(10)
def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    """Regression: a 447-byte "billion laughs" file took 8 s and 1.9 GB."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]")
    path = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"bomb.yaml: expands to more than 1,000,000 values"):
        load_config(path)
    assert time.monotonic() - started < 2


@pytest.mark.timeout(30)
@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_environment_references_cannot_blow_a_file_up(tmp_path, monkeypatch, suffix):
    """Regression: 400,000 references to a 20 kB variable made a 3.6 MB file
    8 GB in memory (37 s); what references add is bounded like the file itself."""
    monkeypatch.setenv("BIG", "A" * 20_000)
    values = ["${BIG}"] * 1_000
    text = json.dumps({"file_format": "1.0", "x": values}) if suffix == "json" else "file_format: '1.0'\nx:\n" + "- ${BIG}\n" * 1_000
    path = write(tmp_path / f"refs.{suffix}", text)
    with pytest.raises(ConfigError, match=rf"refs.{suffix}: its environment references add more than 4,194,304 characters"):
        load_config(path, substitute_env=True)
    monkeypatch.setenv("BIG", "A" * 4_000)  # 4 MB in all: as much as a file may hold
    assert [len(value) for value in load_config(path, substitute_env=True)["x"]] == [4_000] * 1_000


#: The environment of the configuration data model's substitution table.
SPEC_ENVIRONMENT = {
    "STRING_VALUE": "value",
    "BOOL_VALUE": "true",
    "INT_VALUE": "1",
    "FLOAT_VALUE": "1.1",
    "HEX_VALUE": "0xdeadbeef",
    "INVALID_MAP_VALUE": "value\nkey:value",
    "DO_NOT_REPLACE_ME": "Never use this value",
    "REPLACE_ME": "${DO_NOT_REPLACE_ME}",
    "VALUE_WITH_ESCAPE": "value$$",
    "EMPTY_VALUE": "",
}


@pytest.mark.parametrize(
    "value, expected",
    [
        # The specification's table (configuration/data-model.md, "Environment variable substitution"), row by row.
        ("${STRING_VALUE}", "value"),
        ("${BOOL_VALUE}", True),
        ("${INT_VALUE}", 1),
        ("${FLOAT_VALUE}", 1.1),
        ("${HEX_VALUE}", 3735928559),
        ('"${STRING_VALUE}"', "value"),
        ('"${BOOL_VALUE}"', "true"),
        ('"${INT_VALUE}"', "1"),
        ('"${FLOAT_VALUE}"', "1.1"),
        ('"${HEX_VALUE}"', "0xdeadbeef"),
        ("${env:STRING_VALUE}", "value"),
        ("${INVALID_MAP_VALUE}", "value\nkey:value"),
        ("foo ${STRING_VALUE} ${FLOAT_VALUE}", "foo value 1.1"),
        ("${UNDEFINED_KEY}", None),
        ("${UNDEFINED_KEY:-fallback}", "fallback"),
        ("${REPLACE_ME}", "${DO_NOT_REPLACE_ME}"),
        ("${UNDEFINED_KEY:-${STRING_VALUE}}", "${STRING_VALUE}"),
        ("$${STRING_VALUE}", "${STRING_VALUE}"),
        ("$$${STRING_VALUE}", "$value"),
        ("$$$${STRING_VALUE}", "$${STRING_VALUE}"),
        ("$${STRING_VALUE:-fallback}", "${STRING_VALUE:-fallback}"),
        ("$${STRING_VALUE:-${STRING_VALUE}}", "${STRING_VALUE:-value}"),
        ("${UNDEFINED_KEY:-$${UNDEFINED_KEY}}", "${UNDEFINED_KEY:-${UNDEFINED_KEY}}"),
        ("${VALUE_WITH_ESCAPE}", "value$$"),
        ("a $$ b", "a $ b"),
        ("a $ b", "a $ b"),
        # The default stands for a variable that is "null, empty, or undefined".
        ("${EMPTY_VALUE:-0.5}", 0.5),
    ],
)
def test_environment_references_are_substituted_as_the_specification_writes(tmp_path, monkeypatch, value, expected):
    """Regression: an empty variable did not take its default, and an escape
    inside a default (``${A:-$${A}}``) was read after the reference, as the
    Python SDK's loader (0.66b1) still does."""
    for name, text in SPEC_ENVIRONMENT.items():
        monkeypatch.setenv(name, text)
    monkeypatch.delenv("UNDEFINED_KEY", raising=False)
    path = write(tmp_path / "otel.yaml", f'file_format: "1.0"\n${{STRING_VALUE}}: kept\nkey: {value}\n')
    assert load_config(path, substitute_env=True) == {"file_format": "1.0", "${STRING_VALUE}": "kept", "key": expected}


@pytest.mark.parametrize(
    "value, message",
    [
        ("${STRING_VALUE:?error}", r"\$\{STRING_VALUE:\?error\} is no environment reference; expected \$\{NAME\} or"),
        ("${1API_KEY}", r"\$\{1API_KEY\} is no environment reference"),
        ("${API_$KEY}", r"\$\{API_\$KEY\} is no environment reference"),
        ("ok ${sys:otel.service.name}", r"\$\{sys:otel.service.name\} has the prefix 'sys', which is not read here"),
    ],
)
@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_an_invalid_reference_is_an_error_for_the_whole_file(tmp_path, monkeypatch, value, message, suffix):
    """The specification: a reference that does not name a variable is a parse
    error, with no partial result (before, it was read as its own text)."""
    monkeypatch.setenv("STRING_VALUE", "value")
    text = json.dumps({"file_format": "1.0", "key": value}) if suffix == "json" else f'file_format: "1.0"\nkey: {value}\n'
    path = write(tmp_path / f"otel.{suffix}", text)
    where = "line 2: " if suffix == "yaml" else ""  # JSON values carry no line once parsed
    with pytest.raises(ConfigError, match=rf"otel.{suffix}: {where}{message}"):
        load_config(path, substitute_env=True)


@pytest.mark.timeout(60)
def test_many_rules_load_in_linear_time(tmp_path):
    """Regression: the unique-name check was quadratic (80k rules: 7.6 s; the
    same check over 200k rules would take about 50 s)."""
    rules = [{"name": f"r{i}", "span_name": f"s{i}", "rate": 0.5} for i in range(200_000)]
    sampler = from_config({"rules": {"default_rate": 0.1, "rules": rules}})
    assert len(sampler.resolved["stages"][0]["rules"]) == 200_000


def test_an_oversized_file_is_refused_without_reading_it(tmp_path):
    """Regression: a 100 MB file never finished loading."""
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(100 * 1024 * 1024)
    with pytest.raises(ConfigError, match=r"huge.yaml: 104,857,600 bytes is too large"):
        load_config(path)


@pytest.mark.timeout(30)
def test_a_named_pipe_or_a_device_is_refused_without_waiting_for_a_writer(tmp_path):
    """Regression: a named pipe in place of the file made from_config wait forever for a writer."""
    pipe = tmp_path / "policy.yaml"
    os.mkfifo(pipe)
    with pytest.raises(ConfigError, match=r"policy.yaml: not a regular file but a named pipe; expected a configuration file"):
        load_config(pipe)
    with pytest.raises(ConfigError, match=r"/dev/zero: not a regular file but a character device"):
        from_config("/dev/zero")


POLICY = "[probability]\nrate = 0.5\n"


def test_a_file_every_user_may_write_is_refused(tmp_path):
    """Regression: a configuration any local user could rewrite (mode 0666) was
    read, so any of them could set this service's sampling and its bill."""
    path = write(tmp_path / "policy.toml", POLICY)
    path.chmod(0o666)
    with pytest.raises(
        ConfigError, match=r"policy.toml: not read, as every user may write it \(mode 0666\); make it writable by its owner only"
    ):
        from_config(path)
    path.chmod(0o777)  # as a Windows drive under WSL shows every file, where chmod does nothing
    with pytest.raises(
        ConfigError,
        match=r"\(mode 0777\); make it writable by its owner only \(chmod o-w\); a file system that shows every file as 0777 \(a Windows drive under WSL",
    ):
        load_config(path)
    path.chmod(0o664)  # group writing is the deployer's choice
    assert load_config(path) == {"probability": {"rate": 0.5}}


def test_a_file_in_a_folder_every_user_may_write_is_refused(tmp_path):
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    path = write(open_folder / "policy.toml", POLICY)
    open_folder.chmod(0o777)
    with pytest.raises(ConfigError, match=r"where every user may replace it \(mode 0777, no sticky bit\)"):
        load_config(path)
    # A link there is as easy to point elsewhere as the file is to replace.
    safe = write(tmp_path / "safe.toml", POLICY)
    (open_folder / "link.toml").symlink_to(safe)
    with pytest.raises(ConfigError, match=r"link.toml: not read, as it is in .*/open, where every user may replace it"):
        load_config(open_folder / "link.toml")
    # And a link from a private folder into the open one leads to a file anyone may replace.
    (tmp_path / "to-open.toml").symlink_to(path)
    with pytest.raises(ConfigError, match=r"to-open.toml: not read, as it is in .*/open, where every user may replace it"):
        load_config(tmp_path / "to-open.toml")
    open_folder.chmod(0o755)
    assert load_config(path) == {"probability": {"rate": 0.5}}


def test_in_a_sticky_folder_such_as_tmp_only_ones_own_files_or_roots_are_read(tmp_path):
    """In /tmp anyone may make a file first under the name a service reads."""
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    path = write(sticky / "policy.toml", POLICY)
    assert load_config(path) == {"probability": {"rate": 0.5}}
    if os.geteuid() == 0:  # CI runs as root, and only root can give a file away
        os.chown(path, 65534, 65534)
        with pytest.raises(
            ConfigError, match=r"policy.toml: not read, as it is in .*/tmp, where every user may make files, and belongs to user 65534"
        ):
            load_config(path)


def test_a_read_only_file_system_writes_nothing_so_its_files_are_read(tmp_path, monkeypatch):
    import tracesieve._files as files

    path = write(tmp_path / "policy.toml", POLICY)
    path.chmod(0o666)  # as a container image or a mounted config map may have it
    monkeypatch.setattr(files, "_read_only", lambda info: True)
    assert load_config(path) == {"probability": {"rate": 0.5}}


@pytest.mark.parametrize(
    "text,message",
    [
        ('reload = "false"\n[probability]\nrate = 1.0\n', r'live.toml: reload: expected true or false, got the string "false"'),
        ("reload = true\nreload_interval = 0\n[probability]\nrate = 1.0\n", r"live.toml: reload_interval: 0 is too short"),
        ("reload = true\nreload_interval = -1\n[probability]\nrate = 1.0\n", r"live.toml: reload_interval: -1 is too short"),
        (
            'reload = true\nreload_interval = "abc"\n[probability]\nrate = 1.0\n',
            r'live.toml: reload_interval: expected a number, got the string "abc"',
        ),
        (
            'reload = true\nreload_interval = "30"\n[probability]\nrate = 1.0\n',
            r'live.toml: reload_interval: expected a number, got the string "30" \(write a number without quotes\)',
        ),
    ],
)
def test_reload_settings_are_validated_like_every_other_key(tmp_path, text, message):
    """Regression: reload = "false" turned reload on, reload_interval = 0 or -1
    spun a core, and "abc" gave a bare ValueError with no file or key."""
    with pytest.raises(ConfigError, match=message):
        from_config(write(tmp_path / "live.toml", text))


@pytest.mark.parametrize("name,text", [("empty.toml", ""), ("empty.yaml", "# nothing yet\n"), ("empty.json", "{}")])
def test_an_empty_file_is_refused(tmp_path, name, text):
    """Regression: an empty configuration file silently loaded as keep-everything."""
    with pytest.raises(ConfigError, match=rf"{name}: empty; expected at least one stage or setting"):
        from_config(write(tmp_path / name, text))


def test_the_reload_thread_survives_any_file_and_picks_up_the_next_valid_edit(tmp_path):
    """Regression: a deeply nested file killed the reload thread for good."""
    path = write(tmp_path / "live.json", json.dumps({"reload": True, "reload_interval": 0.02, "probability": {"rate": 1.0}}))
    sampler = from_config(path)
    try:
        huge_number = '{"reload": true, "probability": {"rate": 1' + "0" * 400 + "}}"  # an OverflowError used to go uncounted
        for bad in ("[" * 5000 + "]" * 5000, "{not json", json.dumps({"reload": True, "probability": {"rate": 7}}), huge_number):
            failures = sampler.reload_failures
            write(path, bad)
            deadline = time.monotonic() + 5
            while sampler.reload_failures == failures and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sampler.reload_failures == failures + 1
        write(path, json.dumps({"reload": True, "reload_interval": 0.02, "probability": {"rate": 0.0}}))
        deadline = time.monotonic() + 5
        while sampler.reloads == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sampler.reloads == 1
        assert not sampler.should_sample(None, (1 << 56) - 1, "x").decision.is_sampled()
    finally:
        sampler.close()


def test_load_config_reads_every_format(tmp_path):
    doc = {"probability": {"rate": 0.5}}
    assert load_config(write(tmp_path / "a.toml", "[probability]\nrate = 0.5\n")) == doc
    assert load_config(write(tmp_path / "a.yaml", "probability: {rate: 0.5}\n")) == doc
    assert load_config(write(tmp_path / "a.json", '{"probability": {"rate": 0.5}}')) == doc
    assert load_config(doc) == doc


@pytest.mark.timeout(10)
def test_a_document_built_in_code_cannot_expand_without_bound():
    shared = ["lol"] * 10
    for _ in range(9):
        shared = [shared] * 10  # ten billion values, in a few kilobytes
    with pytest.raises(ConfigError, match="more than 1,000,000 values in all; expected at most that many"):
        from_config({"rules": {"default_rate": 0.5, "rules": [{"match": {"a": {"in": shared}}, "rate": 1.0}]}})


HUGE = "9" * 5000  # past Python's 4,300-digit limit on reading an integer


@pytest.mark.parametrize(
    "name,text,message",
    [
        # A \ud800 escape is legal YAML and JSON, but no text: it cannot reach the native parser.
        ("surrogate.yaml", 'force_keep: "\\ud800\\udc00"\n', r"force_keep: not valid text \(an unpaired UTF-16 surrogate"),
        ("surrogate.json", '{"probability": {"\\ud800": 1}}', r"probability: not valid text"),
        (
            "surrogate-rule.yaml",
            'rules:\n  default_rate: 0.1\n  rules: [{name: "\\udfff", route: /x, rate: 1}]\n',
            r"rules\.rules\[0\]\.name: not valid text",
        ),
        ("digits.toml", f"[probability]\nrate = {HUGE}\n", "unreadable value: a number of more than 4,300 digits"),
        ("digits.yaml", f"probability:\n  rate: {HUGE}\n", "unreadable value: a number of more than 4,300 digits"),
        ("digits.json", f'{{"probability": {{"rate": {HUGE}}}}}', "unreadable value: a number of more than 4,300 digits"),
        ("date.yaml", "probability: {rate: 0.5}\nname: 2001-13-45\n", "unreadable value: month must be in 1..12"),
        (
            "float.json",
            '{"probability": {"rate": 1' + "0" * 400 + "}}",
            r"probability\.rate: 1000000000.*\(401 characters\) is out of range",
        ),
    ],
)
def test_text_and_numbers_no_parser_refuses_are_config_errors(tmp_path, name, text, message):
    """Found by fuzzing from_config with random documents: each of these escaped as a
    UnicodeEncodeError or a ValueError instead of the one error type, naming the file."""
    with pytest.raises(ConfigError, match=message) as raised:
        from_config(write(tmp_path / name, text))
    assert str(raised.value).startswith(str(tmp_path / name))


def test_a_document_built_in_code_with_no_text_is_a_config_error():
    with pytest.raises(ConfigError, match=r"force_keep\.rules\[0\]\.name: not valid text"):
        from_config({"force_keep": {"rules": [{"name": "\ud800", "match": {"a": "b"}}]}})
    with pytest.raises(ConfigError, match=r"probability\.rate: .* is out of range; expected a number within"):
        from_config({"probability": {"rate": 10**400}})


#: Keys the loaders know, so random documents reach past the first unknown key.
FUZZ_KEYS = [
    *("force_keep", "adaptive", "rules", "probability", "budget", "rate_limit", "record_rule", "precision", "defer", "store"),
    *("default_rate", "rate", "name", "match", "route", "multipliers", "attribute", "factors", "schedule", "timezone"),
    *("windows", "start", "end", "factor", "error_steps", "slow_threshold", "cost_per_span", "period", "downstream"),
    *("traces_per_second", "burst", "in", "exists", ">", "action", "tracer_provider", "sampler", "parent_based", "root"),
    *("composite/development", "always_on", "trace_id_ratio_based", "ratio", "rule_based", "attribute_values", "key", "values"),
]
FUZZ_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**20),
    st.integers(10**300, 10**400),
    st.floats(allow_nan=True),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=8),  # lone surrogates included (the default leaves them out)
    st.sampled_from(["month", "UTC", "/api/x", "keep", "memory", "pace", "0.5"]),
)
FUZZ_DOCUMENTS = st.dictionaries(
    st.sampled_from(FUZZ_KEYS),
    st.recursive(FUZZ_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FUZZ_KEYS), inner, max_size=4)),
    max_size=4,
)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(document=FUZZ_DOCUMENTS, form=st.sampled_from(["dict", "json", "yaml"]))
def test_any_document_builds_a_sampler_or_is_a_config_error(tmp_path_factory, document, form):
    """The law the fuzzing above broke: whatever the document, from_config builds a sampler
    that decides, or raises ConfigError; never another error."""
    source: Any = document
    if form != "dict":
        source = tmp_path_factory.mktemp("fuzz") / f"policy.{form}"
        source.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML too
    try:
        sampler = from_config(source)
    except ConfigError:
        return
    try:
        assert sampler.should_sample(None, 0x5F3759DF, "GET /api/x", None, {"http.route": "/api/x"}).decision is not None
    finally:
        getattr(sampler, "close", lambda: None)()


@pytest.mark.parametrize(
    "suffix,text",
    [
        ("json", '{"probability": {"rate": 0.5}}'),
        ("toml", "[probability]\r\nrate = 0.5\r\n"),
        ("yaml", "probability:\r\n  rate: 0.5\r\n"),
    ],
)
def test_a_file_saved_with_a_byte_order_mark_and_windows_line_ends_loads(tmp_path, suffix, text):
    """Regression: a UTF-8 byte order mark, as Windows editors save one, was
    "Unexpected UTF-8 BOM" in JSON and "Invalid statement" at line 1 in TOML."""
    path = tmp_path / f"sampling.{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_config(path) == {"probability": {"rate": 0.5}}


def test_a_file_in_another_encoding_is_named_as_not_utf8(tmp_path):
    path = tmp_path / "sampling.json"
    path.write_bytes('{"probability": {"rate": 0.5}}'.encode("utf-16"))
    with pytest.raises(ConfigError, match=r"sampling.json: not UTF-8 text \(invalid start byte at byte 0\)$"):
        load_config(path)


@pytest.mark.parametrize(
    "name, text, where",
    [
        ("rate.yaml", "probability:\n  rate: 0.5\n  rate: 0.1\n", "'rate' is given twice in one mapping (lines 2 and 3)"),
        (
            "stage.yaml",
            "rules:\n  default_rate: 0.1\nprobability: {rate: 0.5}\nrules:\n  default_rate: 0.2\n",
            "'rules' is given twice in one mapping (lines 1 and 4)",
        ),
        ("rate.json", '{"probability": {"rate": 0.5, "rate": 0.1}}', "'rate' is given twice in one mapping"),
        ("rate.toml", "[probability]\nrate = 0.5\nrate = 0.1\n", "invalid TOML: Cannot overwrite a value"),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path, name, text, where):
    """Found with a file an edit left two "rules" sections in: YAML and JSON
    parsers keep the last and drop the first without a word."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {where}")):
        from_config(path)


def test_a_yaml_merge_key_may_still_be_overridden(tmp_path):
    path = tmp_path / "merged.yaml"
    path.write_text("probability:\n  <<: {rate: 0.5}\n  rate: 0.25\n")
    assert load_config(path) == {"probability": {"rate": 0.25}}


def _native_fields(document: Dict[str, Any]) -> List[str]:
    """The fields the native parser names when ``document`` holds an unknown one."""
    with pytest.raises(ConfigError) as raised:
        PipelineSampler(document)
    message = str(raised.value)
    assert "zzz: unknown" in message, message
    return message.split("expected one of ")[-1].split(", ") if "expected one of" in message else []


def test_the_typed_documents_name_every_field_the_parser_takes():
    """Regression: config.Document, which the docs offer to editors and type
    checkers, had no xray_remote stage, no tail section and no budget name:
    a valid document failed its type check. Each typed dict is now compared
    with what the native parser accepts, so they cannot drift apart."""
    from tracesieve import _core, config
    from tracesieve.provider import TAIL_SETTINGS

    def keys(typed: Any) -> List[str]:
        return sorted(typed.__required_keys__ | typed.__optional_keys__)

    required = {
        "force_keep": {"rules": []},
        "adaptive": {},
        "rules": {"rules": [], "default_rate": 0.1},
        "probability": {"rate": 0.1},
        "jaeger_remote": {"service_name": "shop"},
        "xray_remote": {},
        "budget": {"budget": 5},
        "rate_limit": {"traces_per_second": 1},
    }
    stages = {
        "force_keep": config.ForceKeepStage,
        "adaptive": config.AdaptiveStage,
        "rules": config.RulesStage,
        "probability": config.ProbabilityStage,
        "jaeger_remote": config.JaegerRemoteStage,
        "xray_remote": config.XRayRemoteStage,
        "budget": config.BudgetStage,
        "rate_limit": config.RateLimitStage,
    }
    assert sorted(stages) == sorted(_core.pipeline_stages()) == sorted(required)
    for stage, typed in stages.items():
        assert keys(typed) == sorted(_native_fields({stage: {**required[stage], "zzz": 1}})), stage
    rules = {"default_rate": 0.1}
    assert keys(config.Rule) == sorted(_native_fields({"rules": {**rules, "rules": [{"rate": 0.1, "zzz": 1}]}}))
    assert keys(config.Multiplier) == sorted(
        ["schedule", *_native_fields({"rules": {**rules, "rules": [], "multipliers": [{"attribute": "a", "factors": {}, "zzz": 1}]}})]
    )
    with pytest.raises(ConfigError) as raised:
        PipelineSampler({"zzz": 1})
    settings = str(raised.value).split(" or settings ")[-1].split(", ")
    assert keys(config.Document) == sorted([*_core.pipeline_stages(), *settings])
    assert tuple(config.TailSection.__annotations__) == TAIL_SETTINGS
    # configuration.md's reference tables name the same settings and fields.
    documented = _documented_fields()
    assert sorted(documented.pop("")) == sorted(settings)
    assert {stage: sorted(fields) for stage, fields in documented.items()} == {stage: keys(typed) for stage, typed in stages.items()}


def _documented_fields() -> Dict[str, List[str]]:
    """configuration.md's reference: the top-level settings (under "") and each stage's keys."""
    from helpers import ROOT

    text = (ROOT / "docs" / "configuration.md").read_text()
    fields: Dict[str, List[str]] = {}
    for header, named in (("| key | type | default | meaning |", False), ("| stage | key | type | default | meaning |", True)):
        rows = text[text.index(header) :].split("\n\n")[0].splitlines()[2:]
        stage = ""
        for row in rows:
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            if named and cells[0]:
                stage = cells[0].strip("`")
            fields.setdefault(stage, []).extend(re.findall(r"`([a-z_]+)`", cells[1] if named else cells[0]))
    return fields
