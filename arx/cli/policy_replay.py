"""``arx policy replay``: what a candidate bundle would change, before it ships.

    arx policy replay --bundle DIR|FILE --since 24h [--until TIME] [--limit N]
                      [--examples N] [--json]

The server decides the org's recorded decisions again with the candidate
(its own ``opa``, never the sidecars) and answers which would change. On a
terminal the answer is a table (counts per rule transition, then examples);
with ``--json``, or when stdout is not a terminal, it is the API's JSON.
Nothing is pushed or activated.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from arx.cli import policy as policy_cli
from arx.cli.client import decode_as
from arx.cli.commands import Session
from arx.policy.lifecycle.replay_types import ReplayChange, ReplayReport


def replay(
    s: Session,
    *,
    path: Path,
    since: str,
    until: str | None,
    limit: int | None,
    examples: int | None,
    as_json: bool,
) -> bytes | None:
    """The API's answer (JSON), or ``None`` once the table is printed."""
    params: dict[str, int | str] = {"since": since}
    for name, value in (("until", until), ("limit", limit), ("examples", examples)):
        if value is not None:
            params[name] = value
    raw = s.client.send(
        "POST",
        f"{s.org}/policy/replay",
        params=params,
        upload=(policy_cli.bundle_archive(path), "application/gzip"),
    )
    if as_json or not sys.stdout.isatty():
        return raw
    sys.stdout.write(render(decode_as(raw, ReplayReport, "the replay answer")))
    return None


def _time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%SZ")


def _side(verdict: str, policy_id: str | None) -> str:
    return f"{verdict} {policy_id or '-'}"


def _table(rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _examples(change: ReplayChange) -> list[str]:
    head = (
        f"{_side(change.old_verdict, change.old_policy_id)} -> "
        f"{_side(change.new_verdict, change.new_policy_id)} ({change.count})"
    )
    lines = ["", head]
    for ex in change.examples:
        after = "-" if ex.risk_after is None else str(ex.risk_after)
        lines.append(
            f"  {_time(ex.decided_at)}  {ex.agent_name or ex.agent_id or '-'}  "
            f"{ex.connector or '-'} {ex.operation or '-'}  risk {ex.risk_before} -> {after}  "
            f"event {ex.event_id}"
        )
        lines.extend(f"      {reason}" for reason in ex.reasons)
    return lines


def render(report: ReplayReport) -> str:
    """The report as a person reads it on a terminal."""
    lines = [
        f"Replay of {report.candidate_revision} for org {report.org_slug}",
        f"Window: {_time(report.since)} to {_time(report.until)}"
        + (f" (the newest {report.limit} decisions only)" if report.truncated else ""),
        f"Decisions: {report.examined} examined, {report.unchanged} unchanged, "
        f"{report.changed} changed, {report.not_replayable} not replayable "
        "(recorded without their input)",
    ]
    if not report.changes:
        lines.append("No decision would change.")
        return "\n".join(lines) + "\n"
    rows = [("count", "before", "after", "")]
    for c in report.changes:
        same = (c.old_verdict, c.old_policy_id) == (c.new_verdict, c.new_policy_id)
        rows.append(
            (
                str(c.count),
                _side(c.old_verdict, c.old_policy_id),
                _side(c.new_verdict, c.new_policy_id),
                "risk score only" if same else "",
            )
        )
    lines += ["", *_table(rows, right=frozenset({0}))]
    lines += ["", "Examples (newest first)"]
    for c in report.changes:
        lines += _examples(c)
    return "\n".join(lines) + "\n"


def add_command(group: Any, api: policy_cli.Api) -> None:
    """Register ``arx policy replay`` on the ``arx policy`` group."""
    p: argparse.ArgumentParser = api(
        group, "replay", "what a candidate bundle would change in the org's recorded decisions"
    )
    p.add_argument(
        "--bundle",
        type=Path,
        required=True,
        metavar="DIR|FILE",
        help="the candidate: a bundle directory or a .tar.gz",
    )
    p.add_argument(
        "--since",
        required=True,
        metavar="TIME",
        help="decisions since: a duration before now (30m, 24h, 7d) or an ISO 8601 time",
    )
    p.add_argument("--until", metavar="TIME", help="decisions before this time (default: now)")
    p.add_argument("--limit", type=int, metavar="N", help="at most this many decisions, the newest")
    p.add_argument("--examples", type=int, metavar="N", help="examples per change")
    p.add_argument(
        "--json", action="store_true", help="print the API's JSON (the default off a terminal)"
    )
    p.set_defaults(
        call=lambda s, ns: replay(
            s,
            path=ns.bundle,
            since=ns.since,
            until=ns.until,
            limit=ns.limit,
            examples=ns.examples,
            as_json=ns.json,
        )
    )
