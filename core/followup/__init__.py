"""Follow-up: closing the loop on PO notices nobody answered (issue 15, items 1 and 2).

- `settings`: the tenant's follow-up settings (`tenant_settings` rows `followup.*`):
  after how long an unconfirmed notice is listed, the reminder cap, the automatic
  schedule and its switch.
- `query`: the awaiting-answer list: delivered PO notices not confirmed, rejected first.
- `reminders`: one reminder (`po_reminder` template) for a PO, idempotent per PO and
  reminder number, capped, through the one consent gate and the outbox.
- `scheduler`: the automatic reminders a tenant switched on, run by the sender process.

May import `core.models`, `core.notify`, `core.outbox`, `core.auth`, `core.clock`; never
the dashboard or the CLI.
"""
