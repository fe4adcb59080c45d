"""Templates page, "New template": an admin writes a template and submits it to Meta.

Widgets only: the draft is built, checked and submitted by `core` (core.templates.draft,
core.templates.rules, core.template_admin). Each problem is shown under the field it is
about; Meta's own words (a refusal) are shown as text.
"""

from __future__ import annotations

from collections import defaultdict

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.errors import GraphError
from core.i18n import N_, _
from core.meta_words import category_words
from core.numbers.errors import NumberError
from core.template_admin import create_template_as
from core.templates import render_preview
from core.templates.draft import TemplateDraft, build_template, form_field, preview_definition
from core.templates.rules import CATEGORIES, RuleProblem, check_template
from core.templates.submit import TemplateInvalid, refusal_text
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import md_escape, whatsapp_bubble

_KEY = "tpl_new_"
#: Meta's answer to a submission, as the list words it.
_SUBMITTED = {
    "PENDING": N_("Pending review"),
    "APPROVED": N_("Approved"),
    "REJECTED": N_("Rejected"),
}
MAX_QUICK_REPLIES = 10


def render_form(user: UserInfo) -> None:
    """Draw the new-template form and submit it on the admin's word."""
    st.caption(
        _(
            "Write the template, give a sample for each parameter, and submit it: "
            "WhatsApp reviews it (usually within minutes) and its status then shows "
            "in the list."
        )
    )
    left, right = st.columns([3, 2], gap="large")
    slots: dict[str, DeltaGenerator] = {}
    with left:
        draft = _inputs(slots)
    template = build_template(draft)
    started = bool(draft.name.strip() or draft.body.strip())
    problems = check_template(template) if started else []
    by_field: dict[str, list[RuleProblem]] = defaultdict(list)
    for problem in problems:
        by_field[form_field(problem.path)].append(problem)
    with left:
        _show_problems(slots, by_field, started)
    with right:
        st.markdown("**" + _("Preview") + "**")
        definition = preview_definition(template) if started else None
        if definition is not None:
            samples = {k: v for k, v in draft.examples.items() if v.strip()}
            whatsapp_bubble(render_preview(definition, samples))
        else:
            st.caption(_("The supplier's view shows here as you write."))
    blocked = not started or any(p.blocking for p in problems)
    if st.button(
        _("Submit for review"),
        type="primary",
        disabled=blocked,
        key=_KEY + "submit",
        icon=":material/send:",
    ):
        _submit(user, template)


def _inputs(slots: dict[str, DeltaGenerator]) -> TemplateDraft:
    name_col, category_col, language_col = st.columns([3, 2, 1])
    name = name_col.text_input(
        _("Template name"),
        key=_KEY + "name",
        max_chars=512,
        help=_("Lowercase letters, digits and underscores"),
    )
    _field_problems(slots, "name")
    category = category_col.selectbox(
        _("Category"), CATEGORIES, key=_KEY + "category", format_func=category_words
    )
    _field_problems(slots, "category")
    language = language_col.text_input(
        _("Language"), value="es", key=_KEY + "language", max_chars=15, help=_("e.g. es, en, en_US")
    )
    _field_problems(slots, "language")
    header = st.text_input(
        _("Header (optional)"),
        key=_KEY + "header",
        max_chars=60,
        help=_("At most 60 characters and one parameter"),
    )
    _field_problems(slots, "header")
    body = st.text_area(
        _("Message body"),
        key=_KEY + "body",
        max_chars=1024,
        height=140,
        placeholder=_(
            "Hello {{supplier_name}}, PO {{po_number}} is still waiting for your answer."
        ),
        help=_(
            "Parameters are written {{supplier_name}}: lowercase letters, digits and "
            "underscores. Not at the very start or end, never two side by side."
        ),
    )
    _field_problems(slots, "body")
    names = TemplateDraft("", "", "", body, header=header).parameter_names()
    examples: dict[str, str] = {}
    if names:
        st.markdown("**" + _("Sample values (Meta's reviewers read them)") + "**")
    for param in names[:20]:
        examples[param] = st.text_input(
            _("Sample for {{{{{name}}}}}").format(name=md_escape(param[:80])),
            key=_KEY + "example_" + param[:80],
            max_chars=200,
        )
        _field_problems(slots, "example:" + param)
    footer = st.text_input(_("Footer (optional)"), key=_KEY + "footer", max_chars=60)
    _field_problems(slots, "footer")
    replies = st.text_area(
        _("Quick-reply buttons, one per line (optional)"),
        key=_KEY + "buttons",
        height=90,
        help=_("Up to 10 buttons of at most 25 characters"),
    )
    _field_problems(slots, "buttons")
    return TemplateDraft(
        name=name,
        language=language,
        category=str(category),
        body=body,
        examples=examples,
        header=header,
        footer=footer,
        quick_replies=tuple(line.strip() for line in replies.splitlines() if line.strip()),
    )


def _field_problems(slots: dict[str, DeltaGenerator], field: str) -> None:
    """A slot under a field; `_show_problems` fills it once the draft is checked."""
    slots[field] = st.empty()


def _show_problems(
    slots: dict[str, DeltaGenerator], by_field: dict[str, list[RuleProblem]], started: bool
) -> None:
    for field, slot in slots.items():
        problems = by_field.get(field, []) if started else []
        if not problems:
            continue
        with slot.container():
            for problem in problems:
                show = st.error if problem.blocking else st.warning
                show(
                    md_escape(problem.text),
                    icon=":material/error:" if problem.blocking else ":material/warning:",
                )
    general = [p for field, ps in by_field.items() if field not in slots for p in ps]
    for problem in general:
        st.error(md_escape(str(problem)))


def _submit(user: UserInfo, template: dict[str, object]) -> None:
    try:
        with st.spinner(_("Submitting to WhatsApp…")):
            result = create_template_as(runtime.engine(), user, dict(template))
    except TemplateInvalid as exc:
        st.error(
            _("Fix these first; nothing was sent:")
            + "\n\n"
            + "\n".join(f"- {md_escape(str(p))}" for p in exc.problems)
        )
        return
    except NumberError as exc:  # no number, hence no WhatsApp Business Account
        st.error(md_escape(str(exc)))
        return
    except GraphError as exc:  # Meta's own words: text, never Markdown
        st.error(
            _("Meta refused the template: {reason}").format(reason=md_escape(refusal_text(exc)))
        )
        return
    st.success(
        _(
            "Submitted {name} ({language}) for review: {status}. Its status shows in the list "
            "once WhatsApp decides."
        ).format(
            name=md_escape(result.name),
            language=md_escape(result.language),
            status=md_escape(_(_SUBMITTED.get(result.status, result.status))),
        )
    )
