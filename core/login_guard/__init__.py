"""Logins that hold: failed-login throttling and the per-rerun check of a signed-in session.

Owns `login_throttle` (counters per username and per client address, counted with one
atomic statement per attempt) and the rule that decides, on every dashboard rerun,
whether a session still stands (idle time, user removed, disabled or changed).
`core.users.login` uses the throttle; the dashboard keeps its sessions with
`server_sessions` (a table of sign-ins, checked by the rules in `session`).
May import `core.db`, `core.models`, `core.clock` and `core.users`' data types only.
"""
