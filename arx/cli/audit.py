"""``arx audit``: read, export, follow and verify the org's audit trail.

    arx audit list [--agent NAME] [--verdict DENY] [--since 24h] [--json]
    arx audit show EVENT_ID
    arx audit export --format jsonl|csv [--output FILE] [filters]
    arx audit tail [--cursor-file FILE] [--follow]
    arx audit verify | checkpoints | verify-checkpoints FILE --public-key PEM | keygen FILE

``list`` prints a table on a terminal and the API's JSON page otherwise (or
with ``--json``). ``tail`` prints one JSON event per line in the org's chain
order; with ``--cursor-file`` it resumes after the last event it printed,
which it records only once the event is written out, so a restarted tail
misses nothing (it may repeat the events of a batch it was killed in the
middle of; each carries its ``chain.org_seq``, which a consumer can keep).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from arx.audit.types import AuditEvent, AuditPage, FollowPage
from arx.cli.client import CLIError, decode_as
from arx.cli.commands import Session, seg

Api = Callable[..., argparse.ArgumentParser]

_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# How long `arx audit verify` waits for the answer (a million events of one org).
VERIFY_TIMEOUT_SECONDS = 900.0
# How long one follow request waits for new events before asking again.
_FOLLOW_WAIT = 20


def _when(value: str, now: datetime | None = None) -> str:
    """A duration before now (30m, 24h, 7d) as an RFC 3339 time; anything
    else goes to the server as written (it checks it)."""
    found = _DURATION.match(value.strip())
    if not found:
        return value
    try:
        when = (now or datetime.now(UTC)) - timedelta(**{_UNITS[found[2]]: int(found[1])})
    except OverflowError:
        raise CLIError(f"{value} reaches before the year 1", "bad_input") from None
    return when.isoformat().replace("+00:00", "Z")


def _filters(s: Session, ns: argparse.Namespace) -> dict[str, int | str]:
    params: dict[str, int | str] = {}
    for name in ("kind", "connector", "operation", "verdict", "outcome"):
        if getattr(ns, name):
            params[name] = getattr(ns, name)
    if ns.agent:
        params["agent_id"] = s.agent(ns.agent).rsplit("/", 1)[1]
    for name in ("since", "until"):
        if getattr(ns, name):
            params[name] = _when(getattr(ns, name))
    return params


# --- list ---------------------------------------------------------------------------------


def _what(e: AuditEvent) -> str:
    if e.kind in {"admin", "refusal"}:
        return e.action or "-"
    return f"{e.connector or '-'} {e.operation or '-'}"


def _status(e: AuditEvent) -> str:
    if e.kind == "decision":
        risk = f" {e.risk_score}" if e.risk_score is not None else ""
        return f"{e.verdict}{risk}" + (f" {e.outcome}" if e.outcome else "")
    return e.outcome or "-"


def _who(e: AuditEvent, agents: dict[str, str]) -> str:
    if e.agent_id is not None:
        return agents.get(str(e.agent_id), str(e.agent_id)[:8])
    return e.actor or "-"


def render_table(page: AuditPage, agents: dict[str, str]) -> str:
    """A page as a person reads it on a terminal: one line per event."""
    if not page.events:
        return "No events.\n"
    rows = [("seq", "time (UTC)", "kind", "agent / actor", "what", "verdict / outcome", "policy")]
    for e in page.events:
        rows.append(
            (
                str(e.seq),
                e.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                e.kind,
                _who(e, agents),
                _what(e),
                _status(e),
                e.policy_id or "",
            )
        )
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell[:40].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if page.next_cursor:
        lines.append(f"(more: add --cursor {page.next_cursor})")
    return "\n".join(lines) + "\n"


def list_events(s: Session, ns: argparse.Namespace) -> bytes | None:
    params = _filters(s, ns)
    params["limit"] = ns.limit
    if ns.cursor:
        params["cursor"] = ns.cursor
    raw = s.client.send("GET", f"{s.org}/audit", params=params)
    if ns.json or not sys.stdout.isatty():
        return raw
    page = decode_as(raw, AuditPage, "the audit page")
    agents = {
        str(a["id"]): str(a["name"])
        for a in msgspec.json.decode(s.client.send("GET", f"{s.org}/agents"))
    }
    sys.stdout.write(render_table(page, agents))
    return None


# --- export and tail ----------------------------------------------------------------------


def export(s: Session, ns: argparse.Namespace) -> bytes | None:
    params = _filters(s, ns)
    params["format"] = ns.format
    path = f"{s.org}/audit/export"
    if ns.output is None:
        s.client.download(path, sys.stdout.buffer, params=params)
        sys.stdout.flush()
        return None
    # Written beside the target and renamed once complete: a file at --output
    # is always a whole export.
    target: Path = ns.output
    with _whole_file(target) as sink:
        written = s.client.download(path, sink, params=params)
    return msgspec.json.encode({"output": str(target), "bytes": written, "format": ns.format})


def _read_cursor(path: Path | None, start: int) -> int:
    if path is None or not path.exists():
        return start
    text = path.read_text().strip()
    if not (text.isascii() and text.isdigit()):
        raise CLIError(f"{path} does not hold a cursor (an org_seq)", "bad_input")
    return int(text)


def _write_cursor(path: Path, cursor: int) -> None:
    with _whole_file(path) as out:
        out.write(f"{cursor}\n".encode())


@contextlib.contextmanager
def _whole_file(target: Path) -> Iterator[BinaryIO]:
    """Write to a new, uniquely named file beside ``target``, renamed over it
    once complete and on disk (and removed on failure): the target is always
    a whole file, whatever a crash or a second writer does."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    scratch = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        scratch.replace(target)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise


def tail(s: Session, ns: argparse.Namespace, out: BinaryIO | None = None) -> bytes | None:
    sink = out or sys.stdout.buffer
    cursor = _read_cursor(ns.cursor_file, ns.after)
    encoder = msgspec.json.Encoder()
    while True:
        params: dict[str, int | str] = {"after": cursor, "limit": ns.limit}
        if ns.follow:
            params["wait"] = _FOLLOW_WAIT
        raw = s.client.send("GET", f"{s.org}/audit/follow", params=params)
        page = decode_as(raw, FollowPage, "the follow page")
        for event in page.events:
            sink.write(encoder.encode(event) + b"\n")
        sink.flush()
        cursor = page.cursor
        if ns.cursor_file is not None:
            _write_cursor(ns.cursor_file, cursor)
        if not page.events and not ns.follow:
            return None


# --- registration -------------------------------------------------------------------------


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=("decision", "result", "admin", "refusal"))
    p.add_argument("--agent", metavar="NAME", help="the agent's events only")
    p.add_argument("--connector")
    p.add_argument("--operation")
    p.add_argument("--verdict", choices=("PERMIT", "ESCALATE", "DENY"))
    p.add_argument("--outcome", choices=("success", "error", "unknown", "outcome_unknown"))
    p.add_argument(
        "--since", metavar="WHEN", help="a duration before now (30m, 24h, 7d) or an RFC 3339 time"
    )
    p.add_argument("--until", metavar="WHEN", help="as --since; events before it")


def add_commands(group: Any, api: Api) -> None:
    """Register the ``arx audit`` commands on ``group``."""
    p = api(group, "list", "the org's audit events, newest first (a table on a terminal)")
    _add_filters(p)
    p.add_argument("--limit", type=int, default=50, help="at most this many (up to 1000)")
    p.add_argument("--cursor", help="the page before this cursor (printed under a page)")
    p.add_argument("--json", action="store_true", help="the API's JSON page, for scripts")
    p.set_defaults(call=list_events)

    p = api(group, "show", "one event: with its results, approval and chain position")
    p.add_argument("event_id")
    p.set_defaults(
        call=lambda s, ns: s.client.send("GET", f"{s.org}/audit/events/{seg(ns.event_id)}")
    )

    p = api(group, "export", "every event, oldest first, as JSON Lines or CSV (streamed)")
    _add_filters(p)
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--output", "-o", type=Path, help="a file (default: stdout)")
    p.set_defaults(call=export)

    p = api(group, "tail", "events in the org's chain order, one JSON line each")
    p.add_argument("--after", type=int, default=0, help="start after this org_seq (default 0)")
    p.add_argument(
        "--cursor-file", type=Path, help="resume from, and record progress in, this file"
    )
    p.add_argument("--follow", "-f", action="store_true", help="keep waiting for new events")
    p.add_argument("--limit", type=int, default=500, help="events per request (up to 1000)")
    p.set_defaults(call=tail)

    p = api(group, "verify", "recompute the org's hash chain and check its signed checkpoints")
    p.add_argument(
        "--from-checkpoint", type=int, metavar="N", help="trust checkpoint N and verify from it"
    )
    p.set_defaults(call=lambda s, ns: verify(s, from_checkpoint=ns.from_checkpoint))
    p = api(group, "checkpoints", "the org's signed checkpoints and public key (keep them)")
    p.set_defaults(call=lambda s, ns: s.client.send("GET", f"{s.org}/audit/checkpoints"))
    offline = group.add_parser(
        "verify-checkpoints",
        help="offline: check a checkpoints file (arx audit checkpoints) with a public key",
    )
    offline.add_argument("file", type=Path, help="the output of arx audit checkpoints")
    offline.add_argument(
        "--public-key", type=Path, required=True, help="the PEM the deployment gave you"
    )
    offline.set_defaults(operator=verify_checkpoints)
    p = group.add_parser(
        "keygen", help="create the audit signing key (Ed25519) and its public half"
    )
    p.add_argument("file", type=Path, help="the private key (its .pub.pem goes beside it)")
    p.set_defaults(operator=keygen)


def verify(s: Session, *, from_checkpoint: int | None) -> bytes:
    """The verification report; a one-line error (exit 1) when the trail diverges."""
    params = {"from_checkpoint": from_checkpoint} if from_checkpoint else None
    # Every event of the org is hashed again: about 10 s per 100 000 events.
    raw = s.client.send(
        "GET", f"{s.org}/audit/verify", params=params, read_timeout=VERIFY_TIMEOUT_SECONDS
    )
    report = msgspec.json.decode(raw)
    problem = report.get("first_problem") if isinstance(report, dict) else None
    if problem:
        where = f" at org_seq {problem['org_seq']}" if problem.get("org_seq") else ""
        raise CLIError(
            f"the audit trail diverges{where}: {problem['kind']}: {problem['detail']}",
            "audit_diverges",
        )
    return raw


# --- offline: no API, no database ------------------------------------------------------


def verify_checkpoints(ns: argparse.Namespace) -> bytes:
    """No API, no database: the file and the public key the auditor holds."""
    from arx.audit import checkpoints  # noqa: PLC0415

    try:
        export = msgspec.json.decode(ns.file.read_bytes(), type=checkpoints.CheckpointExport)
        public = checkpoints.load_public(ns.public_key.read_bytes())
    except (msgspec.DecodeError, ValueError) as exc:
        raise CLIError(f"cannot read the checkpoints or the key: {exc}", "bad_input") from None
    result = checkpoints.verify_export(export, public)
    if not result.ok:
        raise CLIError(f"the checkpoints do not verify: {result.detail}", "audit_diverges")
    return msgspec.json.encode(result)


def keygen(ns: argparse.Namespace) -> bytes:
    from arx.audit import checkpoints  # noqa: PLC0415

    key: Path = ns.file
    if key.exists():
        raise CLIError(f"{key} exists: ARX never overwrites a signing key", "exists")
    checkpoints.ensure_key(key)
    public = key.with_name(key.name.removesuffix(".pem") + ".pub.pem")
    public.write_bytes(checkpoints.load_signer(key).public_pem())
    return msgspec.json.encode(
        {
            "signing_key": str(key),
            "public_key": str(public),
            "use": "ARX_AUDIT_SIGNING_KEY_FILE=<signing_key> for the API; give auditors "
            "<public_key>",
        }
    )
