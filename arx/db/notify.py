"""One LISTEN connection per process, for every channel ARX follows.

PostgreSQL delivers a NOTIFY at commit to every session listening on its
channel. Each API process keeps one such session here and hands each notice
to the handlers of its channel: ``arx_auth`` (a key, agent or org changed:
forget what is remembered), ``arx_approvals`` (an approval request was
decided: wake whoever waits on it) and ``arx_notifications`` (a reviewer
notification was queued: wake the delivery worker). After any failure the
connection is opened again; handlers' ``on_connect`` run each time it is
(re)opened, because whatever changed meanwhile was not heard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from arx.logs import get_logger

log = get_logger("arx.db.notify")

# After losing the connection, try again after this long.
RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Subscription:
    channel: str
    on_notice: Callable[[str], None]
    on_connect: Callable[[], None] = field(default=lambda: None)


class Notifications:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._subscriptions: list[_Subscription] = []

    def subscribe(
        self,
        channel: str,
        on_notice: Callable[[str], None],
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        """Before ``run``: call ``on_notice(payload)`` for each notice on ``channel``."""
        self._subscriptions.append(_Subscription(channel, on_notice, on_connect or (lambda: None)))

    async def run(self) -> None:
        """Follow every subscribed channel for as long as the task runs."""
        by_channel: dict[str, list[_Subscription]] = {}
        for sub in self._subscriptions:
            by_channel.setdefault(sub.channel, []).append(sub)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=3
                ) as conn:
                    for channel in by_channel:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    for sub in self._subscriptions:
                        sub.on_connect()
                    async for notice in conn.notifies():
                        for sub in by_channel.get(notice.channel, ()):
                            sub.on_notice(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must outlive any one failure
                log.warning(
                    "notification listener lost; reconnecting",
                    extra={"exc_type": type(exc).__name__},
                )
            await asyncio.sleep(RETRY_SECONDS)
