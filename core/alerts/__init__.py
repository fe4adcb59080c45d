"""Alerts: people told by e-mail and in a chat channel when something needs them.

Owns: the kinds of alert (`kinds`), recording them where they happen (`events`, one
small call in the event site's transaction), each user's choices (`preferences`), who
gets what (`rules`), the outbox of its own (`outbox`), the words (`render`), the two
channels (`smtp`, `chat`), the loop the sender worker runs (`delivery`) and the
settings (`config`). May import `core.models`, `core.clock`, `core.i18n`; never the
dashboard, the sender or the webhook app (they import it).
"""
