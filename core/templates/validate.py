"""Meta's rules for a template send, checked before the message is queued.

Every problem a send would hit at Meta (error codes 131008, 131009, 132000, 132005,
132012, 132018, 131053) is found here instead, with a sentence a buyer can act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.templates.definition import TemplateDefinition
from core.templates.fill import Filled, ParamProblem, fill
from core.templates.preview import preview_of

MAX_BODY = 1024
MAX_BODY_ALONE = 32_768  # when the body is the template's only component


def validate_parameters(
    defn: TemplateDefinition, params: Mapping[str, Any] | None
) -> list[ParamProblem]:
    """Every reason sending `defn` with `params` would fail, including the template's status.

    An empty list means Meta should accept the send as far as its content goes.
    """
    return unsendable_problems(defn) + content_problems(defn, fill(defn, params))


def unsendable_problems(defn: TemplateDefinition) -> list[ParamProblem]:
    """The template's own reason it cannot be sent (paused, not approved...), if any."""
    if (reason := defn.unsendable_reason) is not None:
        return [ParamProblem("template", reason, reason)]
    return []


def content_problems(
    defn: TemplateDefinition, filled: Filled, body: str | None = None
) -> list[ParamProblem]:
    """The parameter problems of a resolved send plus the length of the filled body.

    `body` is that filled body (`preview_of(defn, filled).body`) when the caller has
    it already (a CSV check keeps it as the row's preview): not rendered twice."""
    problems = list(filled.problems)
    if body is None:
        body = preview_of(defn, filled).body
    limit = MAX_BODY_ALONE if defn.body_is_only_component else MAX_BODY
    if len(body) > limit:
        reason = f"is {len(body):,} characters once filled in; WhatsApp allows {limit:,}"
        problems.append(ParamProblem("body", f"The message {reason}", reason))
    return problems
