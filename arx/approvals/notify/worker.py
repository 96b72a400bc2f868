"""The delivery worker: drains the notification queue, in every API process
that has a control plane.

It wakes on ``NOTIFY arx_notifications`` (a job was queued or requeued, on
any process), every ``ARX_NOTIFY_POLL_SECONDS`` for retries that fell due
(reviewer messages are not the agent's hot path, so a timer is enough for
those), and whenever a delivery ends. Up to ``CONCURRENCY`` deliveries run at
once, each its own task: a pass claims as many due jobs as there are free
slots and starts them without waiting for them, so a slow vendor (or one
org's slow webhook) holds one slot, never the queue. Each delivery is bounded
as a whole (connecting, sending, reading: ``ARX_NOTIFY_TIMEOUT_SECONDS``) and
holds no database connection while a vendor is called; its claim's lease
outlasts the delivery and the recording of its outcome by a margin, so no
other process claims a job that is still being delivered. A failed attempt
is retried after an exponential
backoff with jitter (at least the vendor's Retry-After), until
``ARX_NOTIFY_MAX_ATTEMPTS``; an error no retry can fix (a revoked token, an
unknown channel) fails at once, and a person can requeue it once it is
fixed. A request decided or expired before its message went out is skipped.
Nothing here writes anything but the job's own row.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import httpx
from psycopg_pool import AsyncConnectionPool

from arx.approvals.notify import channels, delivery, queue, slack, teams, urls
from arx.approvals.notify.delivery import Outcome
from arx.approvals.notify.types import (
    DeliveryStatus,
    Job,
    SlackSecrets,
    Summary,
    TeamsSecrets,
)
from arx.approvals.waiters import wait
from arx.config import Settings
from arx.db.pool import Conn
from arx.errors import InvalidFieldError, KeyUnavailableError, VaultError
from arx.logs import get_logger
from arx.vault.secret import Secret
from arx.vault.service import Vault

log = get_logger("arx.approvals.notify")

NOTIFY_CHANNEL = "arx_notifications"
# Deliveries under way at once in one process.
CONCURRENCY = 10
# However many attempts failed, the next one is at most this far away.
MAX_BACKOFF_SECONDS = 900.0
# A claim holds a job this much longer than its delivery and recording may take.
LEASE_MARGIN_SECONDS = 30.0
# The whole attempt (opening secrets, building the message, the HTTP call,
# whose own bound is the delivery timeout) is cut off this much after it.
_ATTEMPT_SLACK_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


class NotificationWorker:
    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        vault: Vault,
        http: httpx.AsyncClient,
        settings: Settings,
    ) -> None:
        self._pool = pool
        self._vault = vault
        self._http = http
        self._settings = settings
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    @property
    def lease_seconds(self) -> float:
        """How long a claim holds its job: the attempt, recording its outcome,
        and a margin; no live delivery outlasts its lease."""
        return (
            self._settings.notify_timeout_seconds
            + _ATTEMPT_SLACK_SECONDS
            + queue.WORKER_BOUND_SECONDS
            + LEASE_MARGIN_SECONDS
        )

    def notified(self, _payload: str) -> None:
        self._wake.set()

    def wake(self) -> None:
        """After the listener (re)connects: a queued job may have gone unheard."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                # Cleared before the pass: a notice that arrives during it runs another.
                self._wake.clear()
                try:
                    await self.deliver_due()
                except Exception as exc:  # the loop must outlive any one failure
                    log.error(
                        "reviewer notifications could not be processed",
                        extra={"exc_type": type(exc).__name__},
                    )
                await wait(self._wake, self._settings.notify_poll_seconds)
        finally:
            await self._stop()

    async def _stop(self) -> None:
        """Cancel the deliveries under way (their leases run out; another
        attempt follows) and wait for them to end."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def deliver_due(self) -> int:
        """Claim due jobs for the free slots and start delivering each; the
        number started. It does not wait for the deliveries."""
        started = 0
        while (free := CONCURRENCY - len(self._running)) > 0:
            jobs = await queue.claim(
                self._pool,
                limit=free,
                lease_seconds=self.lease_seconds,
                max_attempts=self._settings.notify_max_attempts,
            )
            for job in jobs:
                task = asyncio.create_task(self._deliver(job))
                self._running.add(task)
                task.add_done_callback(self._ended)
            started += len(jobs)
            if len(jobs) < free:
                break
        return started

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        # A slot is free: jobs that did not fit may be waiting.
        self._wake.set()

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before the attempt after ``attempt``: doubling, with jitter."""
        base = self._settings.notify_backoff_seconds * 2.0 ** min(attempt - 1, 30)
        jitter = 0.5 + random.random() / 2  # noqa: S311 -- spreads retries, not a secret
        return max(min(base, MAX_BACKOFF_SECONDS) * jitter, retry_after or 0.0)

    async def _deliver(self, job: Job) -> None:
        seconds = self._settings.notify_timeout_seconds
        try:
            async with asyncio.timeout(seconds + _ATTEMPT_SLACK_SECONDS):
                result = await self._attempt(job)
        except TimeoutError:
            result = delivery.retryable(f"no answer within {seconds:g} s")
        except Exception as exc:  # a bug must cost one attempt, not the queue
            result = delivery.retryable(f"internal error ({type(exc).__name__})")
        status, error, retry_in = self._verdict(job, result)
        try:
            recorded = await queue.finish(
                self._pool, job, status=status, error=error, retry_seconds=retry_in
            )
        except Exception as exc:  # the lease runs out, and the job is tried again
            log.error(
                "a notification's outcome could not be recorded",
                extra={"job_id": str(job.job_id), "exc_type": type(exc).__name__},
            )
            return
        extra = {
            "job_id": str(job.job_id),
            "org_id": str(job.org_id),
            "approval_id": str(job.approval_id),
            "channel": job.channel,
            "attempt": job.attempt,
            "status": status,
            "error": error,
            "recorded": recorded,
        }
        if status == "failed":
            log.warning("reviewer notification failed", extra=extra)
        else:
            log.info("reviewer notification attempted", extra=extra)

    def _verdict(
        self, job: Job, result: Outcome | Skipped
    ) -> tuple[DeliveryStatus, str | None, float]:
        """The job's new status, its error, and when it is due again."""
        if isinstance(result, Skipped):
            return "skipped", result.reason, 0.0
        if result.delivered:
            return "delivered", None, 0.0
        if not result.retry:
            return "failed", result.error, 0.0
        if job.attempt >= self._settings.notify_max_attempts:
            return "failed", f"{result.error} (gave up after {job.attempt} attempts)", 0.0
        return "pending", result.error, self.backoff(job.attempt, result.retry_after)

    async def _attempt(self, job: Job) -> Outcome | Skipped:
        if job.approval_status != "pending":
            return Skipped(f"the request was already {job.approval_status}")
        sealed = job.sealed
        if sealed is None or job.mode is None:
            return Skipped("the org removed this channel")
        try:
            secrets = await channels.open_secrets(self._vault, job.org_id, job.channel, sealed)
        except (VaultError, KeyUnavailableError):
            return delivery.failed("the channel's stored secrets cannot be opened")
        summary = Summary.of(job, self._settings.public_url)
        webhook = secrets.webhook_url
        if webhook is not None and not self._webhook_allowed(job, webhook):
            # Set when the deployment allowed more (a local receiver) than it does now.
            return delivery.failed("the webhook URL is not one this deployment sends to")
        if isinstance(secrets, TeamsSecrets):
            return await teams.post(
                self._http,
                url=secrets.webhook_url,
                summary=summary,
                seconds=self._settings.notify_timeout_seconds,
            )
        return await self._slack(job, secrets, summary)

    def _webhook_allowed(self, job: Job, url: Secret) -> bool:
        # The rule reads the plaintext; its message (unused here) never quotes it.
        try:
            urls.check_webhook_url(
                url.reveal(),
                job.channel,
                allow_insecure=self._settings.allow_insecure_connector_urls,
            )
        except InvalidFieldError:
            return False
        return True

    async def _slack(self, job: Job, secrets: SlackSecrets, summary: Summary) -> Outcome:
        seconds = self._settings.notify_timeout_seconds
        body = slack.message(summary, interactive=bool(job.interactive_approvals))
        if job.mode == "bot" and secrets.bot_token and job.slack_channel:
            if not urls.slack_api_url_allowed(
                self._settings.slack_api_url,
                allow_insecure=self._settings.allow_insecure_connector_urls,
            ):
                return delivery.failed("ARX_SLACK_API_URL must be https")
            return await slack.post_with_bot(
                self._http,
                api_url=self._settings.slack_api_url,
                token=secrets.bot_token,
                channel=job.slack_channel,
                body=body,
                seconds=seconds,
            )
        if job.mode == "webhook" and secrets.webhook_url:
            return await slack.post_to_webhook(
                self._http, url=secrets.webhook_url, body=body, seconds=seconds
            )
        return delivery.failed("the Slack channel's stored setting is incomplete")
