"""Match a template's placeholders and buttons with the values given for one send.

`fill` is the single walk over a definition and its parameters: it resolves every value
it can and records every problem, so preview, validation and payload building agree on
what a parameter means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.i18n import N_, _
from core.templates.definition import MEDIA_FORMATS, TemplateDefinition
from core.templates.values import (
    BUTTONS_KEY,
    HEADER_KEY,
    ParamValueError,
    Resolved,
    resolve_button,
    resolve_media,
    resolve_text,
)

#: Meta's limit for a text header's parameter.
MAX_HEADER_PARAM = 60


@dataclass(frozen=True, slots=True)
class ParamProblem:
    """One reason a send would fail: the parameter ("supplier_name", "1", "header",
    "buttons.0", "body", "template"), a whole sentence a buyer understands, and the
    reason alone (the sentence without its subject) for callers that name the
    parameter their own way."""

    param: str
    message: str
    reason: str = ""


@dataclass(slots=True)  # slots: a CSV check fills one per row
class Filled:
    """The resolved values of one send and the problems found on the way."""

    header: Resolved | None = None
    body: dict[str, Resolved] = field(default_factory=dict)
    buttons: dict[int, Resolved] = field(default_factory=dict)
    problems: list[ParamProblem] = field(default_factory=list)

    def problem(self, param: str, subject: str, reason: str) -> None:
        """Record a problem with `param`: "<subject> <reason>"."""
        self.problems.append(ParamProblem(param, f"{subject} {reason}", reason))


def fill(defn: TemplateDefinition, params: Mapping[str, Any] | None) -> Filled:
    """Resolve `params` against `defn`; every missing, extra or bad value becomes a problem."""
    filled = Filled()
    if params is None:
        params = {}
    if type(params) is not dict and not isinstance(params, Mapping):  # dict: no ABC look
        filled.problem("template", _("The parameters"), _("must map names to values"))
        params = {}
    given = {str(key): value for key, value in params.items()}
    _fill_header(defn, given, filled)
    _fill_body(defn, given, filled)
    _fill_buttons(defn, given.get(BUTTONS_KEY), filled)
    for key in given:
        if key not in defn.body_params and key not in (HEADER_KEY, BUTTONS_KEY):
            filled.problem(key[:60], _label(key[:60]), _("is not a parameter of this template"))
    return filled


def _fill_body(defn: TemplateDefinition, given: dict[str, Any], filled: Filled) -> None:
    for name in defn.body_params:
        if name not in given:
            filled.problem(name, _label(name), _("is missing"))
            continue
        try:
            filled.body[name] = resolve_text(given[name], defn.language)
        except ParamValueError as exc:
            filled.problem(name, _label(name), str(exc))


def _fill_header(defn: TemplateDefinition, given: dict[str, Any], filled: Filled) -> None:
    value = given.get(HEADER_KEY)
    fmt = defn.header_format
    if fmt == "TEXT" and defn.header_params:
        if value is None:
            filled.problem(HEADER_KEY, _(_HEADER_PARAM), _("is missing"))
            return
        try:
            resolved = resolve_text(value, defn.language)
        except ParamValueError as exc:
            filled.problem(HEADER_KEY, _(_HEADER_PARAM), str(exc))
            return
        if resolved.parameter["type"] != "text":
            filled.problem(HEADER_KEY, _(_HEADER_PARAM), _("must be plain text"))
        elif len(resolved.text) > MAX_HEADER_PARAM:
            filled.problem(
                HEADER_KEY,
                _(_HEADER_PARAM),
                _("is {n} characters; WhatsApp allows {limit}").format(
                    n=len(resolved.text), limit=MAX_HEADER_PARAM
                ),
            )
        else:
            filled.header = resolved
    elif fmt in MEDIA_FORMATS:
        assert fmt is not None
        if value is None:
            needs = _("needs {kind} (an https link)").format(kind=_media_kind(fmt))
            filled.problem(HEADER_KEY, _("The header"), needs)
            return
        try:
            filled.header = resolve_media(value, fmt)
        except ParamValueError as exc:
            filled.problem(HEADER_KEY, _("The header"), str(exc))
    elif fmt == "LOCATION":
        filled.problem(HEADER_KEY, _("The location header"), _("cannot be filled from here"))
    elif value is not None:
        filled.problem(HEADER_KEY, _("The header"), _("takes no parameter in this template"))


def _fill_buttons(defn: TemplateDefinition, value: Any, filled: Filled) -> None:
    if value is None:
        value = {}
    if type(value) is not dict and not isinstance(value, Mapping):
        filled.problem(BUTTONS_KEY, _("Button values"), _("must map a button number to its value"))
        return
    given = {str(key): item for key, item in value.items()}
    for button in defn.buttons:
        key = str(button.index)
        label = f"{BUTTONS_KEY}.{key}"
        if key not in given:
            if button.has_url_parameter or button.type == "COPY_CODE":
                filled.problem(label, _button(button.text), _("needs a value"))
            continue
        if not button.takes_parameter:
            filled.problem(label, _button(button.text), _("takes no value"))
            continue
        try:
            filled.buttons[button.index] = resolve_button(given[key], button.type)
        except ParamValueError as exc:
            value_of = _("The value of button {text}").format(text=repr(button.text))
            filled.problem(label, value_of, str(exc))
    known = {str(button.index) for button in defn.buttons}
    for key in given:
        if key not in known:
            filled.problem(
                f"{BUTTONS_KEY}.{key[:10]}",
                _("Button {key}").format(key=repr(key[:10])),
                _("does not exist in this template"),
            )


_HEADER_PARAM = N_("The header's parameter")  # translated where used


def _button(text: str) -> str:
    """A button as a problem names it (worked out only for a problem: not per row)."""
    return _("The button {text}").format(text=repr(text))


def _label(name: str) -> str:
    return _("Parameter {name}").format(name="{{" + name + "}}")


def _media_kind(header_format: str) -> str:
    """A media header's kind with its article ("a document"), as a refusal names it."""
    kinds = {"document": N_("a document"), "image": N_("an image"), "video": N_("a video")}
    known = kinds.get(header_format.lower())
    return _(known) if known else header_format.lower()
