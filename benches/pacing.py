"""Budget pacing under what production does to it: the table in docs/pacing.md.

    python benches/pacing.py            # every case, a month each (about a minute and a half)
    python benches/pacing.py --case "10x demand"

Each case runs a real budget pipeline (tracesieve.testing.run_pacing) on a
simulated clock; the test suite asserts each case's target and checks the docs'
table against this output (tests/test_pacing.py).
"""

from __future__ import annotations

import argparse
import sys

from tracesieve.testing import pacing_cases, pacing_table, run_pacing


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    args = parser.parse_args(argv)
    cases = pacing_cases()
    chosen = args.case or list(cases)
    unknown = [name for name in chosen if name not in cases]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; expected one of: {', '.join(cases)}")
    print(pacing_table([run_pacing(cases[name]) for name in chosen]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
