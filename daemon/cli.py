"""``eliq-daemon``: the continual-learning monitoring service (issue 5 builds it out).

Until the daemon's cycle exists, ``run`` builds the demo pair set, the first step of a cycle.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from eliq.cli import app

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in ([], ["run"], ["once"]):
        app(["pairs", "demo"], standalone_mode=False)
        return 0
    print("eliq-daemon: only `run` and `once` exist so far", file=sys.stderr)
    return 2
