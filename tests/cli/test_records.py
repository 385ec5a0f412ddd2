"""tracesieve records: every service's record in the state directory, read
through copies, with what its budgets spent, whether a process has it open
and whether the next start removes it."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

from tracesieve import BudgetSampler
from tracesieve.cli import main

HOLDER = """
import sys
from tracesieve import BudgetSampler
sampler = BudgetSampler(1.0, budget=100_000, name="checkout")
print("open", flush=True)
sys.stdin.read()
"""


def _spend(sampler, decisions, seed):
    rng = random.Random(seed)
    for _ in range(decisions):
        sampler.should_sample(None, rng.getrandbits(128), "GET /")
    return sampler.budget_status()


def _split(status):
    assumed = status["assumed_spans"]
    return f"{status['percent_used']:.1f}%: {assumed:,} it began with, {status['used_spans'] - assumed:,} counted since"


def _snapshot(directory):
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in directory.iterdir()}


def test_records_lists_each_services_budgets_whether_it_is_open_and_when_it_goes(private_state_dir, capsys):
    monthly = _spend(BudgetSampler(1.0, budget=100_000, name="checkout"), 300, 1)
    daily = _spend(BudgetSampler(1.0, budget=7_000, period="day", timezone="Asia/Seoul", name="checkout"), 50, 2)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        # Made idle after the holder's start, which would have removed it (as the listing says).
        retired = BudgetSampler(1.0, budget=5_000, name="retired").budget_status()
        long_ago = time.time() - 70 * 86_400
        os.utime(private_state_dir / "retired.tracesieve", (long_ago, long_ago))
        before = _snapshot(private_state_dir)
        assert main(["records"]) == 0
        out = capsys.readouterr().out.splitlines()
    finally:
        holder.communicate("", timeout=60)
    assert out[0].startswith(f"{private_state_dir}: 2 records, ")
    assert out[1].startswith("checkout (checkout.tracesieve, ") and ": open in a process now; last opened or written " in out[1]
    assert out[2:4] == [
        f"  - 100,000 spans per month (UTC): {monthly['used_spans']:,} spent this month ({_split(monthly)})",
        f"  - 7,000 spans per day (Asia/Seoul): {daily['used_spans']:,} spent today ({_split(daily)})",
    ]
    assert out[4].startswith("retired (retired.tracesieve, ") and ": no process has it open; last opened or written " in out[4]
    assert out[4].endswith(", 70 days ago: removed when a budget next starts with this state directory (no process used it for 62 days)")
    assert out[5].startswith(f"  - 5,000 spans per month (UTC): {retired['used_spans']:,} spent this month (")
    assert len(out) == 6
    assert _snapshot(private_state_dir) == before, "read through copies: nothing made, written or touched"
    # Once the last process holding it has gone, nobody has it open; and the next start removes the idle record.
    assert main(["records"]) == 0
    assert ": no process has it open; " in capsys.readouterr().out.splitlines()[1]
    subprocess.run([sys.executable, "-c", "from tracesieve import BudgetSampler; BudgetSampler(1.0, budget=10, name='next')"], check=True)
    assert not (private_state_dir / "retired.tracesieve").exists()


def test_records_says_which_records_it_cannot_read_and_why(private_state_dir, capsys):
    BudgetSampler(1.0, budget=5_000, name="open-to-others")
    (private_state_dir / "open-to-others.tracesieve").chmod(0o644)
    truncated = private_state_dir / "truncated.tracesieve"
    truncated.write_bytes(b"tsieve")
    truncated.chmod(0o600)
    (private_state_dir / "notes.txt").write_text("not a record: not listed")
    assert main(["records"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{private_state_dir}: 2 records, ")
    assert out[1].startswith("open-to-others (open-to-others.tracesieve, ")
    assert out[2] == "  not read: it is not a private file of this user (a link, a pipe or device, another user's, or open to others)"
    assert out[3].startswith("truncated (truncated.tracesieve, 6 bytes): no process has it open")
    assert out[4].startswith(f"  cannot be used: {truncated} is not a tracesieve store"), out[4]
    assert "tracesieve-" not in "\n".join(out), "the copy's path is never shown"


def test_a_large_file_named_like_a_record_is_not_copied_whole_to_be_refused(private_state_dir, capsys, monkeypatch):
    """Regression: records and check copied a garbage file named like a record
    whole before the store refused it (900 MB: 4.9 s, and 900 MB of scratch)."""
    from tracesieve import record

    garbage = private_state_dir / "garbage.tracesieve"
    garbage.write_bytes(os.urandom(1 << 20) * 40)  # 40 MiB, not sparse
    garbage.chmod(0o600)
    copied = []
    real_copy = record.copy_for_reading
    monkeypatch.setattr(record, "copy_for_reading", lambda own, copy: (real_copy(own, copy), copied.append(os.stat(copy))))
    assert main(["records"]) == 0
    out = capsys.readouterr().out
    assert f"cannot be used: {garbage} is not a tracesieve store ({40 << 20} bytes beginning " in out, out
    (made,) = copied
    assert made.st_size == 40 << 20 and made.st_blocks * 512 <= 1 << 16, "only the first bytes are copied, into a sparse file"
    assert made.st_mode & 0o777 == 0o600


def test_a_record_is_copied_whole_to_be_read(private_state_dir, tmp_path):
    from tracesieve import record

    BudgetSampler(1.0, budget=5_000, name="whole")
    own = private_state_dir / "whole.tracesieve"
    record.copy_for_reading(own, tmp_path / "copy.tracesieve")
    assert (tmp_path / "copy.tracesieve").read_bytes() == own.read_bytes()
    assert (tmp_path / "copy.tracesieve").stat().st_mode & 0o777 == 0o600


def test_a_service_with_overflow_files_is_one_record_read_whole(private_state_dir, capsys):
    for change in range(66):
        BudgetSampler(1.0, budget=10**9 + change, name="tuned")
    assert main(["records"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("tuned (tuned.tracesieve, tuned+2.tracesieve, ")
    assert len([line for line in out if line.startswith("  - ")]) == 66


def test_records_in_a_missing_or_wrong_directory(tmp_path, capsys):
    missing = tmp_path / "none"
    assert main(["records", "--dir", str(missing)]) == 0
    assert capsys.readouterr().out == f"{missing}: no records yet (the directory is made when a budget first starts)\n"
    assert not missing.exists()
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["records", "--dir", str(a_file)]) == 2
    assert capsys.readouterr().err == f"tracesieve: error: --dir: {a_file} is not a directory\n"


def test_a_directory_this_user_may_not_read_is_said_so_not_listed_as_empty(private_state_dir, monkeypatch, capsys):
    """Listing an unreadable directory finds nothing, which read as "no records"."""
    import tracesieve.cli.host_records as listing

    BudgetSampler(1.0, budget=5_000, name="checkout")
    monkeypatch.setattr(listing.os, "access", lambda path, mode: False)  # as another user's 0700 directory reads
    assert main(["records"]) == 2
    assert (
        capsys.readouterr().err == f"tracesieve: error: {private_state_dir}: this user may not read it, so its records cannot be listed\n"
    )


def test_a_record_removed_while_it_is_listed_is_said_so(private_state_dir, monkeypatch, capsys):
    """A start sweeping idle records may remove one between the listing and its reading."""
    import tracesieve.cli.host_records as listing

    BudgetSampler(1.0, budget=5_000, name="checkout")
    listed = listing.host_records(str(private_state_dir))
    monkeypatch.setattr(listing, "host_records", lambda directory: [("gone", [str(private_state_dir / "gone.tracesieve")]), *listed])
    assert main(["records"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "gone: could not be read (No such file or directory)"
    assert out[2].startswith("checkout (checkout.tracesieve, ")


def test_a_named_pipe_among_the_records_is_said_so_not_waited_on(private_state_dir):
    """Opening a pipe to read waits for a writer: the listing used to hang on one."""
    BudgetSampler(1.0, budget=5_000, name="checkout")
    os.mkfifo(private_state_dir / "stuck.tracesieve", 0o600)
    listing = subprocess.run([sys.executable, "-m", "tracesieve", "records"], capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    out = listing.stdout.splitlines()
    assert out[0].startswith(f"{private_state_dir}: 2 records, ")
    assert out[1].startswith("checkout (checkout.tracesieve, ")
    assert out[3].startswith("stuck (stuck.tracesieve, 0 bytes): whether a process has it open cannot be seen here; ")
    assert out[4] == "  not read: it is not a private file of this user (a link, a pipe or device, another user's, or open to others)"
