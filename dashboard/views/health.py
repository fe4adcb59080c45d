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
from core.settings import LIVE_CREDENTIALS, Settings
from core.system_health import ApiCheck, HealthReport, check_api, read_system_health, resume
from core.users import UserInfo
from dashboard import runtime
from dashboard.widgets import local_time, md_escape

API_CACHE_SECONDS = 30
_QUALITY = {
    "GREEN": ("High", "green"),
    "YELLOW": ("Medium", "orange"),
    "RED": ("Low", "red"),
    "UNKNOWN": ("Not rated yet", "gray"),
    "NA": ("Not rated yet", "gray"),
}
_TIERS = {
    "TIER_50": "50",
    "TIER_250": "250",
    "TIER_1K": "1,000",
    "TIER_2K": "2,000",
    "TIER_10K": "10,000",
    "TIER_100K": "100,000",
    "TIER_UNLIMITED": "Unlimited",
}


@st.cache_data(ttl=API_CACHE_SECONDS, show_spinner="Asking the WhatsApp API…")
def _api_check(base_url: str, phone_number_id: str, _settings: Settings) -> ApiCheck:
    return asyncio.run(check_api(_settings))


def render(user: UserInfo) -> None:
    """Draw the health page for `user` (managers and admins)."""
    try:
        require(user, Action.VIEW_HEALTH)
    except PermissionDenied as exc:
        st.error(str(exc))
        return
    cfg = runtime.settings()
    engine = runtime.engine()
    head, refresh = st.columns([5, 1])
    head.title("Health")
    if refresh.button("Check again", icon=":material/refresh:", key="health_refresh"):
        _api_check.clear()
    api = _api_check(cfg.api_base_url, cfg.phone_number_id, cfg)
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
        names = ", ".join(f"`{name}`" for _, name in LIVE_CREDENTIALS)
        st.info(
            f"**Sandbox mode.** Messages go to the sandbox at `{report.api_base_url}`, nothing "
            "reaches Meta or suppliers; the sandbox's public webhook secret and the demo "
            f"logins work in this mode only. To go live, set all of {names}.",
            icon=":material/science:",
        )
    else:
        st.success(
            f"**Live mode.** Sending through Meta's Cloud API ({report.api_version}) from "
            f"phone number id `{report.phone_number_id}`; webhooks are checked with "
            "`WHATSAPP_APP_SECRET`.",
            icon=":material/cell_tower:",
        )
    _refused_signatures(report)


def _refused_signatures(report: HealthReport) -> None:
    """Deliveries refused for their signature, none valid since: say what to check."""
    refused = report.webhooks.rejected_signatures
    if not report.webhooks.degraded or refused.last_at is None or refused.first_at is None:
        return
    st.error(
        f"**Webhooks are being refused.** {refused.count:,} deliveries refused for a bad "
        f"signature since {local_time(refused.first_at, '%d/%m/%Y %H:%M:%S')} (last "
        f"{local_time(refused.last_at, '%d/%m/%Y %H:%M:%S')}), and none valid since: "
        "statuses and replies are not reaching wanotify. Check that `WHATSAPP_APP_SECRET` "
        "is the app secret of the Meta app that sends the webhooks (Meta's App settings > "
        "Basic), then restart the webhook app.",
        icon=":material/gpp_bad:",
    )


def _api(report: HealthReport) -> None:
    api = report.api
    phone = api.phone
    c1, c2, c3, c4 = st.columns(4)
    with c1.container(border=True):
        st.markdown("**Cloud API**")
        if api.ok:
            st.markdown(":green[:material/check_circle: Reachable, token accepted]")
        elif api.reachable:
            st.markdown(":red[:material/key_off: Token refused]")
        else:
            st.markdown(":red[:material/cloud_off: Not reachable]")
        if api.problem:  # Graph's own error message: text, never Markdown
            st.caption(md_escape(api.problem))
    with c2.container(border=True):
        st.markdown("**Quality rating**")
        rating = (phone.quality_rating or "UNKNOWN").upper() if phone else None
        if rating is None:
            st.markdown(":gray[unknown]")
        else:
            label, color = _QUALITY.get(rating, (rating.title(), "gray"))
            st.markdown(f":{color}[:material/circle: {md_escape(label)}] ({md_escape(rating)})")
            if rating == "RED":
                st.caption("Low quality can lower the messaging limit: check recent failures "
                           "and blocks.")  # fmt: skip
    with c3.container(border=True):
        st.markdown("**Messaging limit**")
        tier = phone.messaging_limit if phone else None
        if tier:
            st.markdown(f"{md_escape(_TIERS.get(tier.upper(), tier))} suppliers per 24 h")
            st.caption(f"Tier {md_escape(tier)} (new conversations started by the business)")
        else:
            st.markdown(":gray[unknown]")
    with c4.container(border=True):
        st.markdown("**Number**")
        if phone:
            st.markdown(md_escape(phone.display_phone_number or "—"))
            st.caption(
                md_escape(
                    f"{phone.verified_name or 'no display name'} · "
                    f"{phone.status or 'status unknown'} · "
                    f"throughput {phone.throughput_level or 'unknown'}"
                )
            )
        else:
            st.markdown(":gray[unknown]")


def _sending(user: UserInfo, report: HealthReport, cfg: Settings) -> None:
    state = report.sending
    queue = state.queue
    st.subheader("Sending")
    if state.paused:
        code = f" (Meta error {state.code})" if state.code is not None else ""
        since = f" since {local_time(state.paused_at)}" if state.paused_at else ""
        reason = md_escape(state.reason or "no reason given")  # Meta's words
        st.error(f"**Sending is paused{since}:** {reason}{code}. "
                 "Fix the cause, then resume.", icon=":material/pause_circle:")  # fmt: skip
        if can(user, Action.RESUME_SENDING):
            if st.button("Resume sending", type="primary", key="health_resume",
                         icon=":material/play_arrow:"):  # fmt: skip
                try:
                    resume(runtime.engine(), cfg, user)
                except PermissionDenied as exc:
                    st.error(md_escape(exc))
                else:
                    st.toast("Sending resumed: the queue starts moving within seconds.")
                    st.rerun()
        else:
            st.caption("An administrator can resume sending once the cause is fixed.")
    else:
        st.success("Sending is running.", icon=":material/play_circle:")
        if state.resumed_at and state.resumed_by:
            st.caption(f"Last resumed {local_time(state.resumed_at)} by "
                       f"{md_escape(state.resumed_by)}.")  # fmt: skip
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Waiting", f"{queue.pending:,}", border=True)
    m2.metric("Due now", f"{queue.due:,}", border=True)
    m3.metric("Sending", f"{queue.sending:,}", border=True)
    m4.metric(
        "Need attention", f"{queue.needs_attention:,}", border=True,
        help="Outcome unknown after an interruption: decide on the Messages page",
    )  # fmt: skip


def _webhooks(report: HealthReport) -> None:
    hooks = report.webhooks
    st.subheader("Webhooks")
    if not hooks.database_ok:
        st.error(f"The database cannot be read: {md_escape(hooks.database_error)}")
        return
    if hooks.last_event_at is None:
        st.warning("No webhook received yet. Meta posts statuses to the webhook app once "
                   "the app's callback URL is configured.", icon=":material/webhook:")  # fmt: skip
    else:
        st.markdown(f"Last webhook received **{_ago(hooks.last_event_at)}** "
                    f"({local_time(hooks.last_event_at, '%d/%m/%Y %H:%M:%S')})")  # fmt: skip
    st.markdown(
        f"- Waiting to be applied: **{hooks.backlog:,}**\n"
        f"- Statuses waiting for their message: **{hooks.held:,}**\n"
        f"- Statuses that never matched a message: **{hooks.unmatched:,}**\n"
        f"- Set aside after repeated errors: **{hooks.failed_receipts:,}**"
    )
    if hooks.needs_attention:
        st.warning("Some webhook events need a look (see the counts above).")


def _sender_and_templates(report: HealthReport) -> None:
    st.subheader("Sender")
    sender = runtime.embedded_sender()
    if sender is None:
        st.info("The dashboard's embedded sender is off (DASHBOARD_EMBEDDED_SENDER=false): "
                "run `wanotify worker` to send.", icon=":material/power_off:")  # fmt: skip
    elif sender.running:
        st.success("The embedded sender is running in the dashboard's process.",
                   icon=":material/send:")  # fmt: skip
    else:
        st.error(f"The embedded sender stopped: {md_escape(sender.error or 'no error recorded')}. "
                 "Restart the dashboard.", icon=":material/error:")  # fmt: skip
    st.subheader("Templates")
    t = report.templates
    if t.total == 0:
        st.warning("No templates synced yet: an administrator syncs them on the Templates page.")
    else:
        synced = _ago(t.last_synced_at) if t.last_synced_at else "never"
        st.markdown(f"**{t.approved}** of {t.total} templates approved · last synced {synced}")
        if t.held:
            st.warning(f"{t.held} template(s) held after Meta paused or disabled them.")


def _ago(when: datetime) -> str:
    seconds = max(0, int((clock.now() - when).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"
