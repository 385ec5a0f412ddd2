"""Configuration files are untrusted data: loading is bounded in size, depth,
YAML aliases and time, every mistake is a ConfigError naming the file and the
key, and the reload thread survives any file."""

from __future__ import annotations

import json
import time

import pytest

from tracesieve import ConfigError, from_config, load_config


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


@pytest.mark.parametrize(
    "text,message",
    [
        ('reload = "false"\n[probability]\nrate = 1.0\n', r"live.toml: reload: expected true or false, got a string"),
        ("reload = true\nreload_interval = 0\n[probability]\nrate = 1.0\n", r"live.toml: reload_interval: 0 is too short"),
        ("reload = true\nreload_interval = -1\n[probability]\nrate = 1.0\n", r"live.toml: reload_interval: -1 is too short"),
        (
            'reload = true\nreload_interval = "abc"\n[probability]\nrate = 1.0\n',
            r"live.toml: reload_interval: expected a number, got a string",
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
    with pytest.raises(ConfigError, match="more than 1000000 values"):
        from_config({"rules": {"default_rate": 0.5, "rules": [{"match": {"a": {"in": shared}}, "rate": 1.0}]}})
