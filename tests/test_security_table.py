"""SECURITY.rst cannot rot: every row of its checklist cites tests, and every cited test exists.

The tests named in the table are collected by pytest itself (in a
subprocess, ``--collect-only``), so a renamed test, a removed parameter or
a file that is gone fails here with the row that names it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: A pytest node id as SECURITY.rst writes it: ``tests/test_x.py::test_y`` or ``...::test_y[param-id]``.
NODE_ID = re.compile(r"tests/[\w/]+\.py::[\w.]+(?:\[[^\]\s`]+\])?")
ROW = re.compile(r"^   \* - ", re.MULTILINE)


def checklist_rows(text: str) -> list[str]:
    """The rows of the ``list-table`` (without its header row), each as its raw text."""
    table = text.split(".. list-table::", 1)[1]
    table = re.split(r"\n\S", table, maxsplit=1)[0]  # up to the first unindented line
    rows = ROW.split(table)[1:]
    return rows[1:]  # the first row is the header


def cited(text: str) -> list[str]:
    """Every node id cited anywhere in ``text``, in order, once each."""
    return list(dict.fromkeys(NODE_ID.findall(text)))


def collected(node_ids: list[str]) -> set[str]:
    """The node ids pytest collects from the files ``node_ids`` name (the files that exist)."""
    files = sorted(
        {node_id.split("::", 1)[0] for node_id in node_ids if (ROOT / node_id.split("::", 1)[0]).is_file()}
    )
    if not files:
        return set()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {line.strip() for line in result.stdout.splitlines() if "::" in line}


def missing(node_ids: list[str], known: set[str]) -> list[str]:
    """The cited ids pytest does not know: neither a test nor a parametrized test's base name."""
    return [
        node_id
        for node_id in node_ids
        if node_id not in known and not any(name.startswith(node_id + "[") for name in known)
    ]


def test_every_row_cites_a_test():
    rows = checklist_rows((ROOT / "SECURITY.rst").read_text(encoding="utf-8"))
    assert len(rows) >= 30
    for row in rows:
        assert cited(row), f"a row of SECURITY.rst cites no test: {row.strip()[:120]!r}"


def test_every_cited_test_exists():
    node_ids = cited((ROOT / "SECURITY.rst").read_text(encoding="utf-8"))
    assert missing(node_ids, collected(node_ids)) == []


FIXTURE = """
.. list-table::
   :header-rows: 1

   * - Requirement
     - Proved by
   * - something real
     - ``tests/test_security_table.py::test_a_made_up_id_is_reported``
   * - a parameter that is real
     - ``tests/test_guard.py::test_two_sources_is_invalid_request[query-twice]``
   * - made up
     - ``tests/test_security_table.py::test_that_does_not_exist``
       ``tests/test_guard.py::test_two_sources_is_invalid_request[no-such-param]``
       ``tests/test_nowhere.py::test_anything``
   * - no test at all
     - —

After the table.
"""


def test_a_made_up_id_is_reported():
    rows = checklist_rows(FIXTURE)
    assert len(rows) == 4
    assert [bool(cited(row)) for row in rows] == [True, True, True, False]
    node_ids = cited(FIXTURE)
    assert missing(node_ids, collected(node_ids)) == [
        "tests/test_security_table.py::test_that_does_not_exist",
        "tests/test_guard.py::test_two_sources_is_invalid_request[no-such-param]",
        "tests/test_nowhere.py::test_anything",
    ]
