"""``check`` reads a fleet budget's count from Redis, writing nothing: what the
fleet has spent this period and the leases its live processes hold."""

from __future__ import annotations

from typing import Any, Dict, List

from tracesieve._core import fleet_scripts
from tracesieve._redis import Secret, connect, scrub
from tracesieve._scrub import scrub as scrub_credentials
from tracesieve.fleet import require_client
from tracesieve.record import this_period

#: Seconds ``check`` waits for Redis before saying it could not read the count.
TIMEOUT = 2.0


def fleet_spending_notes(native: Any, status: Dict[str, Any]) -> List[str]:
    """What ``check`` adds of a budget shared on a Redis fleet (nothing
    outside one), ``status`` being the budget's ``budget_status()``."""
    read = native.fleet_budget_read()
    connection = native.fleet_connection()
    if read is None or connection is None:
        return []
    script, keys, args = read
    period = this_period(status["period"])
    password = None
    try:
        require_client()
        client, password = connect(Secret(connection[0]), socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retry_on_timeout=False)
        raw = client.register_script(fleet_scripts()[script])(keys=keys, args=args)
        client.close()
    except Exception as error:  # whatever Redis or the client does, check says so and goes on
        why = scrub_credentials(scrub(f"{type(error).__name__}: {error}", password))
        return [f"the fleet's count {period} was not read from Redis: {why}"]
    reply = [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in raw] if isinstance(raw, list) else []
    return [_said(reply, period, status["budget_spans"])]


def _said(reply: List[str], period: str, budget: int) -> str:
    """One line of the fleet's reply."""
    if reply[:1] == ["none"]:
        return f"the fleet has no count in Redis {period} yet: none of its processes has stepped {period}"
    if reply[:1] == ["conflict"] and len(reply) == 2:
        return (
            f"the fleet's budget in Redis is held with other settings ({reply[1]}): processes with these settings "
            "treat the fleet as down, each on its fallback share, until no process with those holds a lease, then take its count over"
        )
    try:
        used, members, held = (int(float(value)) for value in reply[2:5])
    except ValueError:
        used = members = held = -2
    if reply[:1] != ["ok"] or len(reply) != 5 or min(members, held) < 0 or used < -1:
        return f"the fleet's count {period} was not read: Redis answered {reply[:5]!r}, which is no reply of tracesieve's script"
    if used == -1:
        return f"the fleet's count in Redis {period} is no count (written by something else); the next process to step repairs it"
    leases = f"{members:,} process{'es' if members != 1 else ''} holding leases of {held:,} spans more"
    return f"the fleet's count in Redis {period}: {used:,} of {budget:,} spans ({100.0 * used / budget:.1f}%); {leases}"
