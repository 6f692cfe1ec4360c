"""Fuzz every endpoint and the guard with 10,000+ random requests each; print what came back.

Usage::

    python bench/fuzz.py                      # 10,000 cases per target
    python bench/fuzz.py --cases 50000 token guard
    python bench/fuzz.py --seed 7             # another run of the same size

The requests and the checks are those of ``tests/test_fuzz_http.py``
(``tests/http_fuzz.py``), driven by Hypothesis without shrinking: a bad
answer is counted and its first examples printed, and the run goes on. For
each target the table shows the cases sent, the status codes returned and
the failures (5xx, escaped exceptions, tracebacks, broken headers, the
protected app reached without a valid token). The exit status is 1 if any
target had a failure.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from http_fuzz import TARGETS, make_server, problems
from hypothesis import HealthCheck, Phase, given, seed, settings


class _Causes(logging.Handler):
    """Remembers where the last unexpected error logged by the middleware was raised."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            frame = traceback.extract_tb(record.exc_info[2])[-1]
            self.last = f"{type(record.exc_info[1]).__name__} at {Path(frame.filename).name}:{frame.lineno}"


def run_target(name: str, cases: int, key_dir: Path, run_seed: int, causes: _Causes) -> dict[str, object]:
    """Send ``cases`` requests to one target; return its counts and first failures."""
    target = TARGETS[name]
    server = make_server(target.kind, key_dir)
    statuses: collections.Counter[int] = collections.Counter()
    failures: collections.Counter[str] = collections.Counter()
    examples: dict[str, object] = {}
    sent = 0

    @seed(run_seed)
    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=target.cases(server))
    def fuzz(case: object) -> None:
        nonlocal sent
        causes.last = ""
        answer, found = problems(name, server, case)  # type: ignore[arg-type]
        sent += 1
        statuses[answer.status if answer.error is None else -1] += 1
        for problem in found:
            key = f"{problem} ({causes.last})" if causes.last else problem
            failures[key] += 1
            examples.setdefault(key, case)

    fuzz()
    return {"cases": sent, "statuses": statuses, "failures": failures, "examples": examples}


def main(argv: list[str] | None = None) -> int:
    """Run the targets named (all by default) and print one line per target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "targets", nargs="*", choices=[[], *TARGETS], metavar="TARGET", help=", ".join(TARGETS)
    )
    parser.add_argument("--cases", type=int, default=10_000, help="requests per target (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    names = args.targets or list(TARGETS)
    causes = _Causes()
    logging.getLogger("oauth_middleware").addHandler(causes)
    logging.getLogger("oauth_middleware").propagate = False  # keep tracebacks off the terminal
    total_failures = 0
    print(f"{'target':<16}{'cases':>8}{'failures':>10}{'seconds':>9}  statuses")
    with tempfile.TemporaryDirectory(prefix="oauth-fuzz-") as key_dir:
        for name in names:
            started = time.perf_counter()
            result = run_target(name, args.cases, Path(key_dir), args.seed, causes)
            elapsed = time.perf_counter() - started
            failures = sum(result["failures"].values())  # type: ignore[attr-defined]
            total_failures += failures
            histogram = " ".join(f"{status}:{count}" for status, count in sorted(result["statuses"].items()))  # type: ignore[attr-defined]
            print(f"{name:<16}{result['cases']:>8}{failures:>10}{elapsed:>9.1f}  {histogram}", flush=True)
            for problem, count in result["failures"].most_common():  # type: ignore[attr-defined]
                print(f"    {count} x {problem}\n        e.g. {result['examples'][problem]!r:.600}")  # type: ignore[index]
    print("status -1 means an exception escaped the middleware" if total_failures else "no failures")
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
