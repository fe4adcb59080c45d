"""`wanotify numbers add/list/test/default/remove/rotate-key/new-key`: admins' commands.

The access token is never an argument (argv shows in `ps` and shell history): it is
read from the environment variable `--token-env` names, from standard input when piped,
or from a hidden prompt. It is never printed again.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from core.i18n import _, ngettext
from core.numbers.errors import NumberError
from core.settings import get_settings

numbers_app = typer.Typer(
    help="WhatsApp business numbers, one or more per tenant.", no_args_is_help=True
)
_err = Console(stderr=True, soft_wrap=True)
_out = Console()


def _fail(message: str) -> typer.Exit:
    _err.print(Text(_("error: {reason}").format(reason=message)))
    return typer.Exit(1)


def _read_token(token_env: str | None) -> str | None:
    """The token from `token_env`, piped standard input, or a hidden prompt (in that order)."""
    if token_env:
        value = os.environ.get(token_env)
        if value is None:
            raise NumberError(f"the environment variable {token_env} is not set")
        return value
    if not sys.stdin.isatty():
        return sys.stdin.read()
    if get_settings().sandbox_mode:
        entered: str = typer.prompt(
            _("Access token (empty: the sandbox's)"), default="", hide_input=True,
            show_default=False,
        )  # fmt: skip
        return entered
    entered = typer.prompt(_("Access token"), hide_input=True)
    return entered


@numbers_app.command("add")
def numbers_add(
    phone_number_id: Annotated[str, typer.Argument(help="Meta's phone number ID (digits)")],
    tenant: Annotated[str | None, typer.Option(help="The tenant this number sends for")] = None,
    waba: Annotated[str | None, typer.Option(help="WhatsApp Business Account ID")] = None,
    display_number: Annotated[str | None, typer.Option(help="e.g. +34 910 00 00 01")] = None,
    name: Annotated[str | None, typer.Option(help="The business's display name")] = None,
    max_mps: Annotated[int, typer.Option(help="Throughput cap, messages a second")] = 80,
    default: Annotated[
        bool | None, typer.Option("--default/--not-default", help="The tenant's default?")
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="Read the access token from this environment variable")
    ] = None,
) -> None:
    """Register a number for a tenant.

    Its token (prompted, piped or from --token-env) is stored encrypted with
    WANOTIFY_SECRET_KEY and never shown again.
    """
    from core.db import get_engine
    from core.numbers.admin import add_number

    settings = get_settings()
    tenant_id = tenant or settings.default_tenant
    try:
        token = _read_token(token_env)
        info = add_number(
            get_engine(), settings, tenant_id=tenant_id, phone_number_id=phone_number_id,
            access_token=token, waba_id=waba, display_number=display_number,
            display_name=name, max_mps=max_mps, make_default=default,
        )  # fmt: skip
    except NumberError as exc:
        raise _fail(str(exc)) from None
    said = (
        _("Number {number} added for tenant {tenant}, as its default.")
        if info.is_default
        else _("Number {number} added for tenant {tenant}.")
    ).format(number=info.phone_number_id, tenant=info.tenant_id)
    check = _("Check it with `wanotify numbers test {number}`.").format(number=info.phone_number_id)
    _out.print(Text(f"{said} {check}"))
    if info.held_applied:
        _out.print(Text(_held_applied(info.held_applied)))


def _held_applied(count: int) -> str:
    return ngettext(
        "{n} webhook event held while the number was unknown was applied.",
        "{n} webhook events held while the number was unknown were applied.",
        count,
    ).format(n=count)


@numbers_app.command("apply-held")
def numbers_apply_held() -> None:
    """Apply webhook events held for naming a number we did not know, now that it is
    registered (`numbers add` does this itself; run it again if that was interrupted)."""
    from core.db import get_engine
    from core.webhooks.release import release_held_numbers

    settings = get_settings()
    released = release_held_numbers(get_engine(), default_tenant=settings.default_tenant)
    if not released.total:
        _out.print(Text(_("No held webhook event names a number we know now.")))
        return
    _out.print(Text(_held_applied(released.total)))


@numbers_app.command("list")
def numbers_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's numbers")] = None,
    removed: Annotated[bool, typer.Option(help="Include removed numbers")] = False,
) -> None:
    """Every number with its tenant, WABA, cap and what Meta last reported (no token)."""
    from core.db import get_engine
    from core.numbers.admin import list_numbers

    numbers = list_numbers(get_engine(), get_settings(), tenant, include_removed=removed)
    table = Table(box=None, highlight=False)
    for column in (_("Tenant"), _("Phone number ID"), _("Number"), _("Name"), _("WABA"),
                   _("Cap/s"), _("Default"), _("Quality"), _("Tier"), _("Checked")):  # fmt: skip
        table.add_column(column, overflow="fold")
    for n in numbers:
        origin = _("environment") if n.from_environment else ""
        if n.removed_at is not None:
            origin = _("removed")
        checked = n.last_checked_at.strftime("%Y-%m-%d %H:%M") if n.last_checked_at else ""
        if n.last_error:
            checked = (checked + " " + _("failed")).strip()
        table.add_row(*(Text(value) for value in (
            n.tenant_id, f"{n.phone_number_id} {origin}".strip(), n.display_number or "",
            n.display_name or "", n.waba_id or "", str(n.max_mps),
            _("yes") if n.is_default else "", n.quality_rating or "", n.messaging_tier or "",
            checked,
        )))  # fmt: skip
    # piped (a script, a log): wide enough that ids and words are never folded
    (_out if sys.stdout.isatty() else Console(width=240)).print(table)


@numbers_app.command("test")
def numbers_test(
    phone_number_id: Annotated[str, typer.Argument(help="The number to check")],
) -> None:
    """Ask Meta how a number stands, with its own token.

    Quality, messaging limit, name status and throughput are stored and printed; exit
    status 1 when Meta refused (the reason is stored too).
    """
    from core.db import get_engine
    from core.numbers.health import check_number

    try:
        outcome = check_number(get_engine(), get_settings(), phone_number_id)
    except NumberError as exc:
        raise _fail(str(exc)) from None
    if outcome.health is None:
        raise _fail(_("Meta refused: {reason}").format(reason=outcome.error))
    h = outcome.health
    for label, value in (
        (_("Number"), h.display_number), (_("Name"), h.display_name),
        (_("Name status"), h.name_status), (_("Status"), h.status),
        (_("Quality"), h.quality_rating), (_("Messaging limit"), h.messaging_tier),
        (_("Throughput"), h.throughput_level),
    ):  # fmt: skip
        _out.print(Text(f"{label}: {value or '-'}"))


@numbers_app.command("default")
def numbers_default(
    phone_number_id: Annotated[str, typer.Argument(help="The number to send from by default")],
    tenant: Annotated[str | None, typer.Option(help="Its tenant")] = None,
) -> None:
    """Make a number its tenant's default (messages without a chosen number use it)."""
    from core.db import get_engine
    from core.numbers.admin import set_default

    tenant_id = tenant or get_settings().default_tenant
    try:
        set_default(get_engine(), tenant_id, phone_number_id)
    except NumberError as exc:
        raise _fail(str(exc)) from None
    _out.print(Text(_("Tenant {tenant} now sends from {number} by default.").format(
        tenant=tenant_id, number=phone_number_id)))  # fmt: skip


@numbers_app.command("remove")
def numbers_remove(
    phone_number_id: Annotated[str, typer.Argument(help="The number to stop sending from")],
    tenant: Annotated[str | None, typer.Option(help="Its tenant")] = None,
) -> None:
    """Stop sending from a number (its token is erased; late statuses still match it)."""
    from core.db import get_engine
    from core.numbers.admin import remove_number

    tenant_id = tenant or get_settings().default_tenant
    try:
        successor = remove_number(get_engine(), tenant_id, phone_number_id)
    except NumberError as exc:
        raise _fail(str(exc)) from None
    said = _("Number {number} removed from tenant {tenant}.").format(
        number=phone_number_id, tenant=tenant_id
    )
    if successor is not None:
        said += " " + _("Its default is now {number}.").format(number=successor)
    _out.print(Text(said))


@numbers_app.command("rotate-key")
def numbers_rotate_key() -> None:
    """Re-encrypt every stored token with the first key of WANOTIFY_SECRET_KEY.

    Put the new key first and keep the old one after it until this has run; then drop it.
    """
    from core.db import get_engine
    from core.numbers.secrets import rotate_tokens

    try:
        count = rotate_tokens(get_engine(), get_settings())
    except NumberError as exc:
        raise _fail(str(exc)) from None
    said = ngettext(
        "{n} access token re-encrypted with the first key.",
        "{n} access tokens re-encrypted with the first key.",
        count,
    )
    _out.print(Text(said.format(n=count)))


@numbers_app.command("new-key")
def numbers_new_key() -> None:
    """Print a fresh key for WANOTIFY_SECRET_KEY (alone on standard output)."""
    from core.numbers.secrets import new_key

    typer.echo(new_key())
