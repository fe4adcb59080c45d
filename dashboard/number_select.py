"""The send pages' "Send from" select: one of the tenant's WhatsApp numbers.

Shown only when the tenant has two or more numbers that can send; the default comes
preselected. Options are the numbers' display names and display numbers, never a
token. The choice is only a wish: `core.routing` checks it is the tenant's when the
message is prepared, so a forged session value is refused there, not trusted here.
"""

from __future__ import annotations

import streamlit as st

from core.i18n import _
from core.routing import number_choices
from dashboard import runtime


def sending_number(tenant_id: str, key: str) -> str | None:
    """The number the user picked (its phone number id), or None when there is no
    choice to make (one number or none: the tenant's default is used)."""
    choices = number_choices(runtime.engine(), runtime.settings(), tenant_id)
    if len(choices) < 2:
        st.session_state.pop(key, None)
        return None
    by_id = {choice.phone_number_id: choice for choice in choices}
    if st.session_state.get(key) not in by_id:
        st.session_state.pop(key, None)  # a number removed since, or another tenant's
    default = next((i for i, c in enumerate(choices) if c.is_default), 0)

    def label(phone_number_id: str) -> str:
        choice = by_id[phone_number_id]
        if choice.is_default:
            return _("{number} (default)").format(number=choice.label)
        return choice.label

    picked = st.selectbox(
        _("Send from"),
        list(by_id),
        index=default,
        format_func=label,
        key=key,
        help=_("Which of your WhatsApp numbers the supplier receives it from"),
    )
    return str(picked) if picked is not None else None
