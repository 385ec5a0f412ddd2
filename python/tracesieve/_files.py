"""Files from and for outside: opening one (a configuration, a strategy, a
state file) without blocking on a named pipe or a device put in its place,
refusing one that any user could have written, and making private
directories for the files we write."""

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


class OpenToEveryone(OSError):
    """Any user of the host could have written the file, or put another in its place."""


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


def open_trusted(path: os.PathLike[str] | str) -> BinaryIO:
    """``path`` opened as ``open_regular`` does, refused with ``OpenToEveryone``
    when every user of the host may write it, or may replace it in its
    directory (writable by all without the sticky bit), through any symbolic
    link on the way, or may have made it first in a folder such as ``/tmp``
    (owned by another user there); a read-only file system writes nothing, so
    it passes. Elsewhere owner and group are not asked about: a configuration
    owned by whoever deploys it is the common case, and group writing is a
    deployer's choice."""
    file = open_regular(path)
    try:
        why = _open_to_everyone(file.fileno(), Path(path))
        if why:
            raise OpenToEveryone(why)
        return file
    except BaseException:
        file.close()
        raise


def _open_to_everyone(handle: int, path: Path) -> str:
    mode = stat.S_IMODE(os.fstat(handle).st_mode)
    if mode & stat.S_IWOTH and not _read_only(os.fstatvfs(handle)):
        # Every file 0777 is the mark of a file system without Unix modes, where chmod does nothing.
        modeless = (
            "; a file system that shows every file as 0777 (a Windows drive under WSL, a CIFS or FAT mount) "
            "takes no chmod: copy the file onto a Linux one"
        )
        return (
            f"every user may write it (mode {mode:04o}); make it writable by its owner only (chmod o-w){modeless if mode == 0o777 else ''}"
        )
    # Both the folder the path names and the folder the file really is in: a link
    # in an open folder can be pointed elsewhere as easily as the file replaced.
    for folder in dict.fromkeys((path.absolute().parent, Path(os.path.realpath(path)).parent)):
        try:
            info = os.stat(folder)
            read_only = _read_only(os.statvfs(folder))
        except OSError:
            continue
        if not info.st_mode & stat.S_IWOTH or read_only:
            continue
        if not info.st_mode & stat.S_ISVTX:
            return (
                f"it is in {folder}, where every user may replace it (mode {stat.S_IMODE(info.st_mode):04o}, no sticky bit); "
                "move it to a folder only its owner can write"
            )
        owner = os.fstat(handle).st_uid
        if owner not in (0, os.geteuid()):
            # In /tmp and its like anyone may make a file first, under the name we read.
            return (
                f"it is in {folder}, where every user may make files, and belongs to user {owner}, "
                f"neither this user ({os.geteuid()}) nor root; move it to a folder only its owner can write"
            )
    return ""


def _read_only(info: os.statvfs_result) -> bool:
    return bool(info.f_flag & os.ST_RDONLY)


def make_private_directory(directory: Path) -> None:
    """Make ``directory`` and each missing parent 0700, as the XDG base directory
    specification asks (``mkdir(parents=True)`` would make the parents 0755)."""
    missing = []
    while not directory.exists() and directory.parent != directory:
        missing.append(directory)
        directory = directory.parent
    for made in reversed(missing):
        made.mkdir(mode=0o700, exist_ok=True)
