"""Benchmark: what reading ``outcome_unknown`` costs (docs/decisions/0023).

Starts a throw-away local PostgreSQL cluster (fsync off), migrates it, and
inserts ``--decisions`` PERMIT decisions of one org with a result for all but
one in 100. Then it times:

- a page of 1000 events (with ``arx.audit.repo.OUTCOME_AS_READ``, which computes each
  PERMIT decision's outcome with an index probe) against the same query
  reading the stored outcome only, at the start and in the middle of the trail;
- 20 000 single-row result inserts with the ``audit_events_result_of`` index
  (migration 0015) and without it.

It prints the figures and asserts nothing: it is a benchmark, not a test.

    .venv/bin/python bench/outcome_read.py --decisions 200000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from arx.audit import repo
from arx.devstack.postgres import LocalPostgres
from arx.devstack.stack import create_database, migrate_and_grant

# A page after a seq, with the stored outcome or the one a reader sees
# (arx.audit.repo.OUTCOME_AS_READ); built from constants only.
_COLUMNS = ", ".join(f"e.{c}" for c in repo.COLUMNS)
_PAGE = (
    " FROM arx.audit_events e"
    " WHERE e.org_id = %(org_id)s AND e.seq > %(after_seq)s ORDER BY e.seq LIMIT %(limit)s"
)
PLAIN = "SELECT " + _COLUMNS + ", e.outcome" + _PAGE
COMPUTED = "SELECT " + _COLUMNS + ", " + repo.OUTCOME_AS_READ + " AS outcome" + _PAGE
DECISIONS = (
    "INSERT INTO arx.audit_events (id, org_id, kind, agent_id, connector, operation, verdict,"
    " risk_score) SELECT gen_random_uuid(), %s, 'decision', %s, 'crowdstrike', 'hosts:search',"
    " 'PERMIT', 10 FROM generate_series(1, %s)"
)
RESULTS = (
    "INSERT INTO arx.audit_events (id, org_id, kind, agent_id, decision_id, connector, operation,"
    " outcome) SELECT gen_random_uuid(), org_id, 'result', agent_id, id, connector, operation,"
    " 'success' FROM arx.audit_events WHERE kind = 'decision' AND seq % 100 <> 0"
)
ONE_RESULT = (
    "INSERT INTO arx.audit_events (id, org_id, kind, agent_id, decision_id, connector, operation,"
    " outcome) VALUES (%s, %s, 'result', %s, %s, 'crowdstrike', 'hosts:search', 'success')"
)
INSERTS = 20_000


def _page_ms(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> float:
    times = []
    for _ in range(30):
        started = time.perf_counter()
        conn.execute(query, params).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _inserts_us(conn: psycopg.Connection[Any], org: uuid.UUID, agent: uuid.UUID) -> float:
    decisions = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM arx.audit_events WHERE kind = 'decision' ORDER BY seq LIMIT %s",
            (INSERTS,),
        )
    ]
    started = time.perf_counter()
    with conn.cursor() as cur:
        for decision in decisions:
            cur.execute(ONE_RESULT, (uuid.uuid4(), org, agent, decision))
    return (time.perf_counter() - started) / len(decisions) * 1e6


def run(decisions: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="arx-bench-outcome-"))
    root.chmod(0o755)  # the cluster's OS user must enter it
    cluster = LocalPostgres(root / "data", fast=True)
    cluster.ensure()
    try:
        url = create_database(cluster.admin_url, "bench_outcome")
        migrate_and_grant(url)
        org, agent = uuid.uuid4(), uuid.uuid4()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO arx.orgs (id, slug, name) VALUES (%s, 'b', 'B')", (org,))
            conn.execute(
                "INSERT INTO arx.agents (id, org_id, name, intent) VALUES (%s, %s, 'a', '{}')",
                (agent, org),
            )
            conn.execute(DECISIONS, (org, agent, decisions))
            conn.execute(RESULTS)
            conn.execute("VACUUM ANALYZE arx.audit_events")
            print(f"{decisions} PERMIT decisions, a result for all but 1 in 100")
            for after in (0, decisions // 2):
                params = {"org_id": org, "after_seq": after, "limit": 1000, "overdue_seconds": 0.0}
                plain, computed = (
                    _page_ms(conn, PLAIN, params),
                    _page_ms(conn, COMPUTED, params),
                )
                print(
                    f"page of 1000 after seq {after}: stored outcome {plain:.2f} ms,"
                    f" with outcome_unknown {computed:.2f} ms"
                )
            print(f"result insert, index on:  {_inserts_us(conn, org, agent):.0f} us")
            conn.execute("DROP INDEX arx.audit_events_result_of")
            print(f"result insert, index off: {_inserts_us(conn, org, agent):.0f} us")
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=200_000)
    run(parser.parse_args().decisions)


if __name__ == "__main__":
    main()
