"""Health: is the product able to send right now, and if not, why.

Reads everything from `core.system_health`; the only action is an admin's "resume
sending" after a pause (role checked again inside `core.system_health.resume`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import streamlit as st

from core import clock
from core.auth import Action, PermissionDenied, can, require
from core.formatting import format_number
from core.i18n import _, ngettext
from core.meta_words import number_status_words, quality_words, throughput_words
from core.routing import SenderNumber
from core.settings import LIVE_CREDENTIALS, Settings
from core.system_health import (
    ApiCheck,
    HealthReport,
    check_api,
    read_system_health,
    resume,
    tenant_number,
)
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import local_time, md_escape

API_CACHE_SECONDS = 30
#: The colour each quality rating is drawn in (its words: core.meta_words).
_QUALITY_COLOUR = {"GREEN": "green", "YELLOW": "orange", "RED": "red"}
_TIERS: dict[str, int | None] = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1_000,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
    "TIER_UNLIMITED": None,
}


@st.cache_data(ttl=API_CACHE_SECONDS, show_spinner=False)
def _api_check(
    base_url: str, phone_number_id: str, _settings: Settings, _number: SenderNumber | None
) -> ApiCheck:
    return asyncio.run(check_api(_settings, number=_number))


def render(user: UserInfo) -> None:
    """Draw the health page for `user` (managers and admins)."""
    try:
        require(user, Action.VIEW_HEALTH)
    except PermissionDenied as exc:
        st.error(md_escape(_(str(exc))))
        return
    cfg = runtime.settings()
    engine = runtime.engine()
    head, refresh = st.columns([4, 1])  # room for the button's words in Spanish
    head.title(_("Health"))
    if refresh.button(_("Check again"), icon=":material/refresh:", key="health_refresh"):
        _api_check.clear()
    number = tenant_number(engine, cfg, user.tenant_id)  # the tenant's own number
    number_id = number.phone_number_id if number is not None else cfg.phone_number_id
    with st.spinner(_("Asking the WhatsApp API…")):
        api = _api_check(cfg.api_base_url, number_id, cfg, number)
    report = read_system_health(engine, cfg, user.tenant_id, api=api)
    _mode(report)
    _api(report)
    st.divider()
    _sending(user, report, cfg)
    st.divider()
    left, right = st.columns(2, gap="large")
    with left:
        _webhooks(report)
    with right:
        _sender_and_templates(report)


def _mode(report: HealthReport) -> None:
    if report.sandbox_mode:
        names = ", ".join(f"`{name}`" for _field, name in LIVE_CREDENTIALS)
        st.info(
            _(
                "**Sandbox mode.** Messages go to the sandbox at {url}, nothing reaches Meta "
                "or suppliers; the sandbox's public webhook secret and the demo logins work "
                "in this mode only. To go live, set all of {names}."
            ).format(url=f"`{report.api_base_url}`", names=names),
            icon=":material/science:",
        )
    else:
        st.success(
            _(
                "**Live mode.** Sending through Meta's Cloud API ({version}) from phone "
                "number id {phone_id}; webhooks are checked with `WHATSAPP_APP_SECRET`."
            ).format(version=report.api_version, phone_id=f"`{report.phone_number_id}`"),
            icon=":material/cell_tower:",
        )
    _refused_signatures(report)


def _refused_signatures(report: HealthReport) -> None:
    """Deliveries refused for their signature, none valid since: say what to check."""
    refused = report.webhooks.rejected_signatures
    if not report.webhooks.degraded or refused.last_at is None or refused.first_at is None:
        return
    st.error(
        _(
            "**Webhooks are being refused.** {count} deliveries refused for a bad signature "
            "since {first} (last {last}), and none valid since: statuses and replies are not "
            "reaching wanotify. Check that `WHATSAPP_APP_SECRET` is the app secret of the "
            "Meta app that sends the webhooks (Meta's App settings > Basic), then restart "
            "the webhook app."
        ).format(
            count=format_number(refused.count),
            first=local_time(refused.first_at, "seconds"),
            last=local_time(refused.last_at, "seconds"),
        ),
        icon=":material/gpp_bad:",
    )


def _api(report: HealthReport) -> None:
    api = report.api
    phone = api.phone
    c1, c2, c3, c4 = st.columns(4)
    with c1.container(border=True):
        st.markdown("**" + _("Cloud API") + "**")
        if api.ok:
            st.markdown(":green[:material/check_circle: " + _("Reachable, token accepted") + "]")
        elif api.reachable:
            st.markdown(":red[:material/key_off: " + _("Token refused") + "]")
        else:
            st.markdown(":red[:material/cloud_off: " + _("Not reachable") + "]")
        if api.problem:  # Graph's own error message: text, never Markdown
            st.caption(md_escape(api.problem))
    with c2.container(border=True):
        st.markdown("**" + _("Quality rating") + "**")
        rating = (phone.quality_rating or "UNKNOWN").upper() if phone else None
        if rating is None:
            st.markdown(":gray[" + _("unknown") + "]")
        else:
            label, color = quality_words(rating), _QUALITY_COLOUR.get(rating, "gray")
            st.markdown(f":{color}[:material/circle: {md_escape(label)}]")
            if rating == "RED":
                st.caption(_("Low quality can lower the messaging limit: check recent failures "
                             "and blocks."))  # fmt: skip
    with c3.container(border=True):
        st.markdown("**" + _("Messaging limit") + "**")
        tier = phone.messaging_limit if phone else None
        if tier:
            st.markdown(_tier_text(tier))
            st.caption(_("New conversations started by the business"))
        else:
            st.markdown(":gray[" + _("unknown") + "]")
    with c4.container(border=True):
        st.markdown("**" + _("Number") + "**")
        if phone:
            st.markdown(md_escape(phone.display_phone_number or "—"))
            st.caption(
                md_escape(
                    _("{name} · {status} · throughput {throughput}").format(
                        name=phone.verified_name or _("no display name"),
                        status=number_status_words(phone.status)
                        if phone.status
                        else _("status unknown"),
                        throughput=throughput_words(phone.throughput_level)
                        if phone.throughput_level
                        else _("unknown"),
                    )
                )
            )
        else:
            st.markdown(":gray[" + _("unknown") + "]")


def _tier_text(tier: str) -> str:
    """Meta's messaging-limit tier ("TIER_1K") as how many suppliers a day it allows."""
    if tier.upper() not in _TIERS:
        return md_escape(tier)
    limit = _TIERS[tier.upper()]
    if limit is None:
        return _("Unlimited suppliers per 24 h")
    return _("{count} suppliers per 24 h").format(count=format_number(limit))


def _sending(user: UserInfo, report: HealthReport, cfg: Settings) -> None:
    state = report.sending
    queue = state.queue
    st.subheader(_("Sending"))
    st.caption(_("From WhatsApp number {number}").format(number=f"`{state.phone_number_id}`"))
    if state.paused:
        reason = md_escape(state.reason or _("no reason given"))  # Meta's words
        if state.code is not None:
            reason = _("{reason} (Meta error {code})").format(reason=reason, code=state.code)
        if state.paused_at:
            text = _("**Sending is paused since {when}:** {reason}. Fix the cause, then resume.")
        else:
            text = _("**Sending is paused:** {reason}. Fix the cause, then resume.")
        when = local_time(state.paused_at) if state.paused_at else ""
        st.error(text.format(when=when, reason=reason), icon=":material/pause_circle:")
        if can(user, Action.RESUME_SENDING):
            if st.button(_("Resume sending"), type="primary", key="health_resume",
                         icon=":material/play_arrow:"):  # fmt: skip
                try:
                    resume(runtime.engine(), cfg, user)
                except PermissionDenied as exc:
                    st.error(md_escape(_(str(exc))))
                else:
                    st.toast(_("Sending resumed: the queue starts moving within seconds."))
                    st.rerun()
        else:
            st.caption(_("An administrator can resume sending once the cause is fixed."))
    else:
        st.success(_("Sending is running."), icon=":material/play_circle:")
        if state.resumed_at and state.resumed_by:
            st.caption(_("Last resumed {when} by {who}.").format(
                when=local_time(state.resumed_at), who=md_escape(state.resumed_by)))  # fmt: skip
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(_("Waiting"), format_number(queue.pending), border=True)
    m2.metric(_("Due now"), format_number(queue.due), border=True)
    m3.metric(_("Sending"), format_number(queue.sending), border=True)
    m4.metric(
        _("Need attention"), format_number(queue.needs_attention), border=True,
        help=_("Outcome unknown after an interruption: decide on the Messages page"),
    )  # fmt: skip


def _webhooks(report: HealthReport) -> None:
    hooks = report.webhooks
    st.subheader(_("Webhooks"))
    if not hooks.database_ok:
        st.error(_("The database cannot be read: {error}").format(
            error=md_escape(hooks.database_error)))  # fmt: skip
        return
    if hooks.last_event_at is None:
        st.warning(
            _("No webhook received yet. Meta posts statuses to the webhook app once the app's "
              "callback URL is configured."),
            icon=":material/webhook:",
        )  # fmt: skip
    else:
        ago, when = _ago(hooks.last_event_at), local_time(hooks.last_event_at, "seconds")
        st.markdown(_("Last webhook received **{ago}** ({when})").format(ago=ago, when=when))
    counts: tuple[tuple[str, int], ...] = (
        (_("Waiting to be applied"), hooks.backlog),
        (_("Statuses waiting for their message"), hooks.held),
        (_("Statuses that never matched a message"), hooks.unmatched),
        (_("Set aside after repeated errors"), hooks.failed_receipts),
    )
    numbers = (  # shown when any: events matched by their number (metadata.phone_number_id)
        (
            _("Held: events for a WhatsApp number we do not know"),
            hooks.unknown_number + hooks.held_replies,
        ),
        (
            _("Not applied: statuses naming another number than their message's"),
            hooks.other_number,
        ),
    )
    counts += tuple((label, count) for label, count in numbers if count)
    st.markdown("\n".join(f"- {label}: **{format_number(count)}**" for label, count in counts))
    if hooks.needs_attention:
        st.warning(_("Some webhook events need a look (see the counts above)."))


def _sender_and_templates(report: HealthReport) -> None:
    st.subheader(_("Sender"))
    sender = runtime.embedded_sender()
    if sender is None:
        st.info(_("The dashboard's embedded sender is off (DASHBOARD_EMBEDDED_SENDER=false): "
                  "run `wanotify worker` to send."), icon=":material/power_off:")  # fmt: skip
    elif sender.running:
        st.success(_("The embedded sender is running in the dashboard's process."),
                   icon=":material/send:")  # fmt: skip
    else:
        error = md_escape(sender.error or _("no error recorded"))
        st.error(_("The embedded sender stopped: {error}. Restart the dashboard.").format(
            error=error), icon=":material/error:")  # fmt: skip
    st.subheader(_("Templates"))
    t = report.templates
    if t.total == 0:
        st.warning(_("No templates synced yet: an administrator syncs them on the Templates "
                     "page."))  # fmt: skip
    else:
        synced = _ago(t.last_synced_at) if t.last_synced_at else _("never")
        st.markdown(
            ngettext(
                "**{approved}** of {total} template approved · last synced {synced}",
                "**{approved}** of {total} templates approved · last synced {synced}",
                t.total,
            ).format(approved=t.approved, total=t.total, synced=synced)
        )
        if t.held:
            st.warning(
                ngettext(
                    "{n} template held after Meta paused or disabled it.",
                    "{n} templates held after Meta paused or disabled them.",
                    t.held,
                ).format(n=t.held)
            )


def _ago(when: datetime) -> str:
    seconds = max(0, int((clock.now() - when).total_seconds()))
    if seconds < 60:
        return _("just now")
    if seconds < 3600:
        return _("{n} min ago").format(n=seconds // 60)
    if seconds < 86400:
        return _("{n} h ago").format(n=seconds // 3600)
    days = seconds // 86400
    return ngettext("{n} day ago", "{n} days ago", days).format(n=days)
