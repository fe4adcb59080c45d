"""Meta's send-time template components and the whole Cloud API message body."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.cloud_api import template_message
from core.templates.definition import NAMED, TemplateDefinition
from core.templates.fill import Filled, ParamProblem, fill
from core.templates.validate import content_problems

_WA_DIGITS = re.compile(r"[1-9][0-9]{6,14}")


class TemplateParamsError(ValueError):
    """Parameters that do not fit the template; `problems` lists each one."""

    def __init__(self, problems: list[ParamProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(problem.message for problem in problems))


def build_components(
    defn: TemplateDefinition, params: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The `template.components` list for sending `defn` with `params`.

    Raises TemplateParamsError when a parameter is missing, extra or invalid. The
    template's status is deliberately not checked: it can change between queueing and
    sending, and the sender handles a paused template (132015) when Meta reports it.
    """
    filled = fill(defn, params)
    problems = content_problems(defn, filled)
    if problems:
        raise TemplateParamsError(problems)
    return components_of(defn, filled)


def components_of(defn: TemplateDefinition, filled: Filled) -> list[dict[str, Any]]:
    """The `template.components` list from an already resolved send without problems
    (`fill`, then `content_problems` empty): callers that also validate and preview the
    send resolve it once (formatting an amount is the costly part) and build from it."""
    named = defn.parameter_format == NAMED
    components: list[dict[str, Any]] = []
    if filled.header is not None:
        parameter = dict(filled.header.parameter)
        if named and defn.header_params and parameter["type"] == "text":
            parameter["parameter_name"] = defn.header_params[0]
        components.append({"type": "header", "parameters": [parameter]})
    if defn.body_params:
        parameters = []
        for name in defn.body_params:
            parameter = dict(filled.body[name].parameter)
            if named:
                parameter["parameter_name"] = name
            parameters.append(parameter)
        components.append({"type": "body", "parameters": parameters})
    for button in defn.buttons:
        resolved = filled.buttons.get(button.index)
        if resolved is not None:
            components.append(
                {
                    "type": "button",
                    "sub_type": button.type.lower(),
                    "index": str(button.index),
                    "parameters": [resolved.parameter],
                }
            )
    return components


def build_template_payload(
    defn: TemplateDefinition, to_digits: str, params: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The whole Cloud API message body for one template send (no callback data: the
    dispatcher adds `biz_opaque_callback_data` with the outbox message id)."""
    if not isinstance(to_digits, str) or not _WA_DIGITS.fullmatch(to_digits):
        raise ValueError("to_digits must be the digits of an E.164 number, without '+'")
    return template_message(to_digits, defn.name, defn.language, build_components(defn, params))


def payload_of(defn: TemplateDefinition, to_digits: str, filled: Filled) -> dict[str, Any]:
    """`build_template_payload` from an already resolved send without problems."""
    if not isinstance(to_digits, str) or not _WA_DIGITS.fullmatch(to_digits):
        raise ValueError("to_digits must be the digits of an E.164 number, without '+'")
    return template_message(to_digits, defn.name, defn.language, components_of(defn, filled))
