"""Reads one ``XREAD`` reply from a Redis socket with bounded memory.

Anyone who can write to a fleet's stream decides what a reader receives: an
entry of hundreds of megabytes, or one with millions of fields. redis-py reads
a reply whole, so the shared tail decisions read theirs here instead: a value
larger than ``max_value`` is received and dropped without being held, and an
entry with more fields than any tracesieve batch has ends the read (the caller
drops the connection and resumes after that entry). Both RESP2 and RESP3.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import List, Optional, Tuple

__all__ = ["Entry", "ProtocolError", "read_xread"]

#: Fields an announcement entry has (one: ``b``); more is not ours.
MAX_FIELDS = 16
_MAX_LINE = 4096
_CHUNK = 65536


class ProtocolError(Exception):
    """The reply is not what ``XREAD`` sends."""


@dataclass
class Entry:
    """One stream entry: its id, its ``b`` field (None when missing or
    oversized), and whether a value was dropped for its size."""

    id: bytes
    batch: Optional[bytes]
    oversized: bool = False


class _Reader:
    def __init__(self, sock: socket.socket, max_value: int) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._max_value = max_value

    def _more(self) -> None:
        chunk = self._sock.recv(_CHUNK)
        if not chunk:
            raise ConnectionError("the connection was closed by the server")
        self._buffer += chunk

    def line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            if len(self._buffer) > _MAX_LINE:
                raise ProtocolError("a reply line longer than 4 KiB")
            self._more()

    def header(self) -> Tuple[bytes, int]:
        """(type byte, length) of an aggregate or bulk; length -1 for a null."""
        line = self.line()
        kind = line[:1]
        if kind == b"-":
            raise ProtocolError(line[1:200].decode("utf-8", "replace"))
        if kind == b"_":
            return kind, -1
        if kind not in (b"*", b"%", b"$", b"~", b">", b"=") or not line[1:].lstrip(b"-").isdigit():
            raise ProtocolError(f"an unexpected reply line {line[:40]!r}")
        return kind, int(line[1:])

    def bulk(self, limit: int) -> Tuple[Optional[bytes], bool]:
        """(the value, or None when null or over ``limit``; whether it was over)."""
        kind, length = self.header()
        if kind not in (b"$", b"=", b"_"):
            raise ProtocolError("expected a string")
        if length < 0:
            return None, False
        if length > limit:
            self._skip(length + 2)
            return None, True
        while len(self._buffer) < length + 2:
            self._more()
        value = bytes(self._buffer[:length])
        del self._buffer[: length + 2]
        return value, False

    def _skip(self, count: int) -> None:
        """Receive ``count`` bytes and keep none of them."""
        held = min(count, len(self._buffer))
        del self._buffer[:held]
        count -= held
        while count > 0:
            chunk = self._sock.recv(min(count, _CHUNK))
            if not chunk:
                raise ConnectionError("the connection was closed by the server")
            count -= len(chunk)


def read_xread(sock: socket.socket, max_value: int) -> Tuple[List[Entry], bool]:
    """The entries of one ``XREAD`` reply (of one stream), and whether the read
    was abandoned at the last entry (more fields than any batch has): the
    connection then holds the rest of the reply and must be dropped."""
    reader = _Reader(sock, max_value)
    kind, streams = reader.header()
    if streams < 0:
        return [], False  # the block timed out
    entries: List[Entry] = []
    for _ in range(streams):
        # RESP2: [name, entries] per stream; RESP3: a map of name to entries.
        if kind == b"*":
            _, pair = reader.header()
            if pair != 2:
                raise ProtocolError("a stream reply that is not [name, entries]")
        reader.bulk(_MAX_LINE)  # the stream's name
        _, count = reader.header()
        for _ in range(max(count, 0)):
            _, parts = reader.header()
            entry_id, _ = reader.bulk(64)
            if parts != 2 or entry_id is None:
                raise ProtocolError("a stream entry that is not [id, fields]")
            _, fields = reader.header()
            entry = Entry(entry_id, None)
            entries.append(entry)
            if fields > 2 * MAX_FIELDS:
                entry.oversized = True
                return entries, True
            for _ in range(max(fields, 0) // 2):
                name, _ = reader.bulk(64)
                value, over = reader.bulk(max_value)
                entry.oversized = entry.oversized or over
                if name == b"b" and value is not None:
                    entry.batch = value
    return entries, False
