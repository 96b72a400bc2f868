"""Reviewers hear about new approval requests in Slack and Microsoft Teams.

Guarantees:
- a committed escalation always has its notifications queued: a trigger on
  ``arx.approval_requests`` writes one job per configured channel in the
  same transaction (migration 0012), and nothing when the org has none;
- jobs are rows, so they outlive the process: every API process with a
  control plane runs a ``worker`` that drains the queue, woken by NOTIFY and
  by a timer for due retries, and retries with exponential backoff and jitter
  up to ``ARX_NOTIFY_MAX_ATTEMPTS`` before a job is ``failed``;
- a notification never approves or changes an approval: only a reviewer's
  vote does (the review page, the admin API, or an owner-enabled Slack
  button from the bot's own workspace, which goes through the same
  ``arx.approvals.review.vote``);
- a webhook goes to its vendor's documented hosts only, so an org's admins
  cannot aim ARX at anything inside the deployment;
- channel secrets (bot token, webhook URLs, signing secret) are sealed by the
  vault and never appear in an API answer, a log line, an audit record, a
  delivery's ``last_error`` or an exception message;
- what an agent controls (its params, and the policy reasons that quote
  them) is escaped for each vendor's markup, so a request cannot mention
  ``@channel`` or plant a link in a reviewer's message, nor hide text with
  invisible or direction-changing characters; a message that had to cut it
  says so and offers no vote in Slack.

Modules: ``types`` (wire and row shapes), ``repo`` (SQL), ``urls`` (where
webhooks may go), ``channels`` (the per-org settings), ``queue`` (claiming
and recording jobs, the admin list), ``text`` (escaping and truncation),
``slack`` and ``teams`` (each vendor's message and HTTP call), ``delivery``
(what an answer means), ``worker`` (the loop), ``interactions`` (Slack's
Approve/Reject buttons).
"""
