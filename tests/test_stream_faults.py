"""The shared tail decisions' stream under attack and fault, against a real
redis-server: a forged entry of tens of megabytes or of a hundred thousand
fields, an entry id from the future and then a stream made anew, and Redis
stalled for three seconds during traffic."""

from __future__ import annotations

import logging
import threading
import time

from test_tail_sharing import chain_pair, one_request, wait_for

MB = 1 << 20


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class PeakRss:
    """The highest resident size seen while running (sampled every 2 ms)."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _kept_roots(exporter, ids):
    kept = {s.context.trace_id for s in exporter.get_finished_spans() if s.name == "root"}
    return all(tid in kept for tid in ids)


def test_a_huge_forged_entry_is_skipped_with_bounded_memory_and_announcements_still_arrive(redis_server, caplog):
    caplog.set_level(logging.WARNING, logger="tracesieve.sharing")
    exporter, (caller, leaf), tails = chain_pair(redis_server.url + "#huge", wait=1.0)
    try:
        assert wait_for(lambda: all(t.stats()["share_connected"] for t in tails))
        client = redis_server.client()
        payload = b"\x01" + bytes(64 * MB)
        with PeakRss() as memory:
            client.xadd("tracesieve:huge:tail", {"b": payload})
            del payload
            client.xadd("tracesieve:huge:tail", {f"f{i}": "v" for i in range(100_000)})
            assert wait_for(lambda: tails[0].stats()["share_oversized_skipped"] >= 2, 20)
        assert memory.peak - memory.start < 24 * MB, f"the reader held {(memory.peak - memory.start) / MB:.0f} MB"
        # Real announcements after the forged ones are heard.
        started = time.perf_counter()
        ids = [one_request(caller, leaf) for _ in range(20)]
        assert time.perf_counter() - started < 1.0, "spans were not slowed"
        assert wait_for(lambda: _kept_roots(exporter, ids), 10)
        assert "larger than any announcement batch" in caplog.text
    finally:
        for tail in tails:
            tail.shutdown()


def test_an_entry_from_the_future_and_a_stream_made_anew_do_not_deafen_readers(redis_server, caplog):
    caplog.set_level(logging.WARNING, logger="tracesieve.sharing")
    exporter, (caller, leaf), tails = chain_pair(redis_server.url + "#future", wait=3.0)
    try:
        assert wait_for(lambda: all(t.stats()["share_connected"] for t in tails))
        client = redis_server.client()
        client.xadd("tracesieve:future:tail", {"b": b"junk"}, id="9999999999999-0")
        time.sleep(0.5)  # the readers read it: they now wait after an id from the future
        client.delete("tracesieve:future:tail")  # gone (deleted, or expired): a sender makes it anew
        ids = [one_request(caller, leaf) for _ in range(10)]
        assert wait_for(lambda: _kept_roots(exporter, ids), 10), "the readers went deaf"
        assert tails[0].stats()["share_stream_resets"] >= 1
        assert "from the future" in caplog.text and "made anew" in caplog.text
    finally:
        for tail in tails:
            tail.shutdown()


def test_a_three_second_stall_keeps_the_links_and_loses_no_announcement(redis_server):
    exporter, (caller, leaf), tails = chain_pair(redis_server.url + "#stall", wait=6.0)
    try:
        assert wait_for(lambda: all(t.stats()["share_connected"] for t in tails))
        redis_server.pause()
        try:
            ids = [one_request(caller, leaf) for _ in range(10)]  # announced while Redis is stalled
            time.sleep(3.0)
        finally:
            redis_server.resume()
        # The announcements made in the stall reach the caller within a second of its end...
        assert wait_for(lambda: tails[0].stats()["heard"] >= 10, 1.0), tails[0].stats()
        # ...in time for its decisions (decision_wait), so every root is kept.
        assert wait_for(lambda: _kept_roots(exporter, ids), 8), "announcements made in the stall were lost"
        for tail in tails:
            stats = tail.stats()
            assert stats["share_failures"] == 0 and stats["share_connected"] == 1, stats
            assert stats["announcements_dropped"] == 0
    finally:
        for tail in tails:
            tail.shutdown()
