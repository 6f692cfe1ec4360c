"""The whole comparison in one run: in-process guard beside its peers, issuance, real server.

Run from the repository root (the peers are bench-only dependencies:
``pip install -e '.[bench]'`` or ``tox -e bench``)::

    python bench/run.py            # about three minutes
    python bench/run.py --quick    # about half a minute, a smoke test
    python bench/run.py --json     # the same, machine-readable

It runs :mod:`peers` (µs per request of our guard, Authlib, oauthlib and a
hand-written floor around the same app), :mod:`issuance` (client-credentials
tokens per second, ours and oauthlib's) and :mod:`wrk` (requests per second
through gunicorn), then prints the machine, each part's table, and the
issue's targets with the ratio measured for each. Ratios, not absolute
times, are what carry from one machine to another.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any

import guard
import issuance
import peers
import wrk

#: The JWT row compared under gunicorn and in-process ("cached": every request after the first).
JWT_CACHED = "jwt HS256, cached"


@dataclasses.dataclass(frozen=True)
class Target:
    """One of the issue's targets and what this run measured.

    :param name: what is compared.
    :param measured: the ratio measured; it decides met or missed.
    :param goal: the bound.
    :param at_least: True for ``measured >= goal``, False for ``<=``.
    :param check: the same ratio measured another way, less disturbed by
        a busy machine (fastest repetitions; server CPU per request).
    :param check_how: how ``check`` was measured.
    """

    name: str
    measured: float
    goal: float
    at_least: bool
    check: float
    check_how: str

    @property
    def met(self) -> bool:
        """Whether the measured ratio is within the goal."""
        return self.measured >= self.goal if self.at_least else self.measured <= self.goal

    def row(self, width: int) -> str:
        """The target as one line of the table."""
        bound = f"{'>=' if self.at_least else '<='} {self.goal:.2f}"
        result = "met" if self.met else "MISSED"
        return f"{self.name:<{width}}  {self.measured:>8.2f}  {bound:>8}  {result:<6}  {self.check:.2f} ({self.check_how})"


def machine() -> dict[str, Any]:
    """Where and when the run happened: date, CPUs, CPU model, Python."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def targets(in_process: peers.Report, issued: issuance.Report, served: wrk.Report | None) -> list[Target]:
    """The issue's targets against this run's ratios."""
    found = [
        Target(
            f"in-process overhead, {in_process.ours} / Authlib's",
            in_process.overhead_vs_authlib(),
            1 / 3,
            at_least=False,
            check=in_process.overhead_vs_authlib(fastest=True),
            check_how="fastest repetitions",
        ),
        Target(
            "client-credentials tokens/s, ours / oauthlib's",
            issued.ratio(),
            2.0,
            at_least=True,
            check=issued.ratio(fastest=True),
            check_how="fastest repetitions",
        ),
    ]
    if served is not None:
        for name in (wrk.SQLITE, wrk.JWT):
            found.append(
                Target(
                    f"gunicorn req/s, {name} / bare",
                    served.ratio(name),
                    0.90,
                    at_least=True,
                    check=served.cpu_ratio(name),
                    check_how="server CPU per request",
                )
            )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three benchmarks and print one report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--rounds", type=int, help="wrk runs per server, interleaved (default 3, quick 1)")
    parser.add_argument("--no-wrk", action="store_true", help="skip the real-server part")
    args = parser.parse_args(argv)
    plan = guard.QUICK if args.quick else guard.Plan()
    where = machine()
    print(f"{where['date']}, {where['cpus']} CPUs ({where['cpu']}), {where['python']}", file=sys.stderr)
    print("in-process: guard beside its peers ...", file=sys.stderr)
    in_process = peers.run(plan)
    print("client-credentials issuance ...", file=sys.stderr)
    issued = issuance.run(plan)
    served: wrk.Report | None = None
    served_missing = "skipped (--no-wrk)"
    if not args.no_wrk:
        print("gunicorn + wrk ...", file=sys.stderr)
        try:
            served = wrk.run(2 if args.quick else 10, args.rounds or (1 if args.quick else 3))
        except peers.Unavailable as reason:
            served_missing = str(reason)
    found = targets(in_process, issued, served)
    if args.json:
        print(
            json.dumps(
                {
                    "machine": where,
                    "in_process": in_process.as_dict(),
                    "issuance": issued.as_dict(),
                    "wrk": served.as_dict() if served else {"missing": served_missing},
                    "targets": [{**dataclasses.asdict(t), "met": t.met} for t in found],
                },
                indent=2,
            )
        )
        return 0
    print(f"{where['date']}, {where['cpus']} CPUs ({where['cpu']}), {where['python']}")
    print(f"\n## in-process, µs per request (median of {plan.repeats} interleaved repetitions)\n")
    print(in_process.table())
    print("\n## client-credentials issuance, in-process\n")
    print(issued.table())
    print("\n## gunicorn, 2 sync workers, 127.0.0.1\n")
    print(f"{served.command}\n{served.table()}" if served else f"missing: {served_missing}")
    width = max(len(t.name) for t in found)
    print("\n## targets\n")
    print(f"{'target':<{width}}  {'measured':>8}  {'goal':>8}  result  cross-check")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 8}  ------  {'-' * 11}")
    for target in found:
        print(target.row(width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
