"""Files from and for outside: opening one (a configuration, a strategy, a
state file) without blocking on a named pipe or a device put in its place,
and making private directories for the files we write."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


class NotARegularFile(OSError):
    """The path names something other than a regular file."""


def open_regular(path: os.PathLike[str] | str, flags: int = 0) -> BinaryIO:
    """``path`` opened for reading in binary. O_NONBLOCK keeps the open from
    waiting forever for a writer when the path is a named pipe; whatever is
    not a regular file raises ``NotARegularFile`` saying what it is. ``flags``
    adds to the open's flags (``os.O_NOFOLLOW``)."""
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | flags)
    try:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"not a regular file but {_KINDS.get(stat.S_IFMT(mode), 'something else')}")
        return os.fdopen(handle, "rb")
    except BaseException:
        os.close(handle)
        raise


def make_private_directory(directory: Path) -> None:
    """Make ``directory`` and each missing parent 0700, as the XDG base directory
    specification asks (``mkdir(parents=True)`` would make the parents 0755)."""
    missing = []
    while not directory.exists() and directory.parent != directory:
        missing.append(directory)
        directory = directory.parent
    for made in reversed(missing):
        made.mkdir(mode=0o700, exist_ok=True)
