"""SQL for reviewer notifications (migration 0012).

The control plane reads and writes one org's rows (row-level security); the
worker's cross-org work goes through the two definer functions only.
"""

from __future__ import annotations

# --- channels (arx_control, org-scoped) ---------------------------------------------------

_CHANNEL_INFO = (
    "channel, mode, slack_channel, interactive_approvals, bot_token_set, webhook_url_set,"
    " signing_secret_set, webhook_host, slack_team_id, slack_app_id, updated_at, updated_by"
)
_SEALED = "version, kek_id, wrapped_dek, nonce, ciphertext"

LIST_CHANNELS = f"SELECT {_CHANNEL_INFO} FROM arx.notification_channels ORDER BY channel"

CHANNEL_VERSION = (
    "SELECT version FROM arx.notification_channels WHERE channel = %(channel)s FOR UPDATE"
)

UPSERT_CHANNEL = (
    "INSERT INTO arx.notification_channels (org_id, channel, mode, slack_channel,"
    " interactive_approvals, bot_token_set, webhook_url_set, signing_secret_set, webhook_host,"
    f" slack_team_id, slack_app_id, {_SEALED}, updated_by)"
    " VALUES (%(org_id)s, %(channel)s, %(mode)s, %(slack_channel)s, %(interactive_approvals)s,"
    " %(bot_token_set)s, %(webhook_url_set)s, %(signing_secret_set)s, %(webhook_host)s,"
    " %(slack_team_id)s, %(slack_app_id)s,"
    " %(version)s, %(kek_id)s, %(wrapped_dek)s, %(nonce)s, %(ciphertext)s, %(updated_by)s)"
    " ON CONFLICT (org_id, channel) DO UPDATE SET mode = excluded.mode,"
    " slack_channel = excluded.slack_channel,"
    " slack_team_id = excluded.slack_team_id, slack_app_id = excluded.slack_app_id,"
    " interactive_approvals = excluded.interactive_approvals,"
    " bot_token_set = excluded.bot_token_set, webhook_url_set = excluded.webhook_url_set,"
    " signing_secret_set = excluded.signing_secret_set, webhook_host = excluded.webhook_host,"
    " version = excluded.version, kek_id = excluded.kek_id,"
    " wrapped_dek = excluded.wrapped_dek, nonce = excluded.nonce,"
    " ciphertext = excluded.ciphertext, updated_by = excluded.updated_by, updated_at = now()"
    f" RETURNING {_CHANNEL_INFO}"
)

DELETE_CHANNEL = (
    "DELETE FROM arx.notification_channels WHERE channel = %(channel)s RETURNING channel"
)

# What Slack's interactions need: the org's slug, the switch, the bot's
# workspace and app, the sealed secrets.
SLACK_INTERACTIONS = (
    "SELECT o.slug AS org_slug, c.interactive_approvals, c.slack_team_id, c.slack_app_id,"
    f" {_SEALED}"
    " FROM arx.notification_channels c JOIN arx.orgs o ON o.id = c.org_id"
    " WHERE c.org_id = %(org_id)s AND c.channel = 'slack'"
)
# The org's active member with this email (RLS keeps memberships to the org).
MEMBER_BY_EMAIL = (
    "SELECT u.id, u.email FROM arx.users u JOIN arx.memberships m ON m.user_id = u.id"
    " WHERE lower(u.email) = lower(%(email)s) AND m.active"
)

# --- the queue: the worker (definer functions, across orgs) ------------------------------

CLAIM = "SELECT * FROM arx.claim_notification_jobs(%(limit)s, %(lease)s, %(max_attempts)s)"
FINISH = (
    "SELECT arx.finish_notification_job(%(job_id)s, %(claim_token)s, %(status)s, %(error)s,"
    " %(retry_seconds)s)"
)

# --- the queue: administration (arx_control, org-scoped) ----------------------------------

_DELIVERY = (
    "id, approval_id, channel, status, attempts, last_error,"
    " CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,"
    " last_attempt_at, delivered_at, created_at"
)
LIST_DELIVERIES = (
    f"SELECT {_DELIVERY} FROM arx.notification_jobs"
    " WHERE (%(status)s::text IS NULL OR status = %(status)s::text)"
    " ORDER BY created_at DESC, id LIMIT %(limit)s"
)
DELIVERY = f"SELECT {_DELIVERY} FROM arx.notification_jobs WHERE id = %(id)s"
# Requeued: due now, with a fresh set of attempts; whoever held the last
# claim can no longer record anything.
RETRY = (
    "UPDATE arx.notification_jobs SET status = 'pending', attempts = 0, next_attempt_at = now(),"
    " claim_token = NULL"
    f" WHERE id = %(id)s AND status = 'failed' RETURNING {_DELIVERY}"
)
# Removing a channel: what it has not delivered will not be.
SKIP_PENDING = (
    "UPDATE arx.notification_jobs SET status = 'skipped',"
    " last_error = 'the org removed this channel'"
    " WHERE channel = %(channel)s AND status = 'pending'"
)
WAKE_WORKERS = "SELECT pg_notify('arx_notifications', %(org_id)s)"
