"""Passwords out of text we show: a URL's userinfo password (``scheme://user:pw@host``,
also after a path normalised ``//`` to ``/``) and ``password=`` options become ``***``."""

from __future__ import annotations

import re

#: ``user:password@`` where a URL's authority starts (after ``/``, a separator or the text's start).
_USERINFO = re.compile(r"(^|[/\s,;=(\"'])([^/\s:@,;=\"']*):([^@\s/,;\"']+)@")
#: ``password=...`` in a query string or a ``key=value`` list.
_PASSWORD_OPTION = re.compile(r"(?i)\b(password|passwd|pwd|token|secret)=([^&\s,;\"']+)")


def scrub(text: str) -> str:
    """``text`` with every password it seems to hold replaced by ``***``."""
    text = _USERINFO.sub(lambda match: f"{match.group(1)}{match.group(2)}:***@", text)
    return _PASSWORD_OPTION.sub(lambda match: f"{match.group(1)}=***", text)
