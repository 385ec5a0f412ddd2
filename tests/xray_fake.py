"""A local fake of X-Ray's two sampling endpoints (``POST /GetSamplingRules``,
paginated, and ``POST /SamplingTargets``), on loopback, for the X-Ray tests:
it serves the rules and targets a test sets, records what clients send, and
can answer late, with garbage, with an error status or with a huge body."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, List, Optional

from helpers import LoopbackServer


def rule(name: str, priority: int, fixed_rate: float = 0.05, reservoir: int = 1, **fields: Any) -> Dict[str, Any]:
    """A rule record as X-Ray sends it: every field `*` unless given."""
    spec: Dict[str, Any] = {
        "RuleName": name,
        "RuleARN": f"arn:aws:xray:us-east-1:123456789012:sampling-rule/{name}",
        "ResourceARN": "*",
        "Priority": priority,
        "FixedRate": fixed_rate,
        "ReservoirSize": reservoir,
        "ServiceName": "*",
        "ServiceType": "*",
        "Host": "*",
        "HTTPMethod": "*",
        "URLPath": "*",
        "Version": 1,
        "Attributes": {},
    }
    spec.update(fields)
    return {"SamplingRule": spec, "CreatedAt": 1.7e9, "ModifiedAt": 1.7e9}


def target(
    name: str, fixed_rate: float, quota: Optional[float] = None, ttl: Optional[float] = None, interval: Optional[float] = None
) -> Dict[str, Any]:
    document: Dict[str, Any] = {"RuleName": name, "FixedRate": fixed_rate}
    if quota is not None:
        document["ReservoirQuota"] = quota
    if ttl is not None:
        document["ReservoirQuotaTTL"] = ttl
    if interval is not None:
        document["Interval"] = interval
    return document


class FakeXRay(LoopbackServer):
    """Serves ``rules`` (``page_size`` per page) and answers reports with
    ``targets(statistics)`` (default: none); records every request."""

    def __init__(self, rules: Optional[List[Dict[str, Any]]] = None, page_size: int = 100):
        self.rules = rules or []
        self.page_size = page_size
        self.targets: Callable[[List[Dict[str, Any]]], List[Dict[str, Any]]] = lambda statistics: []
        self.last_rule_modification = 0.0
        self.delay = 0.0
        self.status = 200
        self.raw: Optional[bytes] = None
        self.requests: List[Dict[str, Any]] = []
        self.statistics: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests.append({"path": self.path, "body": body, "at": time.monotonic()})
                time.sleep(fake.delay)
                answer = fake.answer(self.path, body)
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                try:
                    self.wfile.write(answer)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._serve(Handler)

    def answer(self, path: str, body: Dict[str, Any]) -> bytes:
        if self.raw is not None:
            return self.raw
        if path == "/GetSamplingRules":
            start = int(body.get("NextToken") or 0)
            page: Dict[str, Any] = {"SamplingRuleRecords": self.rules[start : start + self.page_size]}
            if start + self.page_size < len(self.rules):
                page["NextToken"] = str(start + self.page_size)
            return json.dumps(page).encode()
        if path == "/SamplingTargets":
            documents = body.get("SamplingStatisticsDocuments", [])
            if self.status == 200:  # an error answer means X-Ray took nothing
                with self.lock:
                    self.statistics.extend(documents)
            return json.dumps(
                {
                    "SamplingTargetDocuments": self.targets(documents),
                    "LastRuleModification": self.last_rule_modification,
                    "UnprocessedStatistics": [],
                }
            ).encode()
        return b'{"message": "not found"}'

    def paths(self) -> List[str]:
        with self.lock:
            return [r["path"] for r in self.requests]

    def reported(self) -> Dict[str, Dict[str, int]]:
        """The statistics received, summed per rule."""
        totals: Dict[str, Dict[str, int]] = {}
        with self.lock:
            for document in self.statistics:
                entry = totals.setdefault(document["RuleName"], {"RequestCount": 0, "SampledCount": 0, "BorrowCount": 0})
                for key in entry:
                    entry[key] += document[key]
        return totals
