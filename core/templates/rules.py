"""Meta's rules for a new template, checked before it is submitted for review.

`check_template(data)` reads a template in Meta's own JSON (what
`POST /{waba_id}/message_templates` takes: name, language, category, parameter_format,
components) and returns every problem at once, each with the path of the field it is
about (`name`, `body.text`, `body.example.supplier_name`, `buttons[1].text`...), so a
form can show it beside that field and the CLI can name it. Problems that Meta refuses
outright (or its review rejects) block the submission; the others are warnings.

The rules come from Meta's template docs and the team's facts sheet: name of lowercase
letters, digits and underscores (at most 512); header text at most 60 characters with at
most one parameter; body at most 1,024 characters, not starting or ending with a
parameter, no two parameters side by side; every parameter with a sample; footer at
most 60 characters without parameters; at most 10 buttons (10 quick replies, 2 URL, 1
phone number, 1 copy code), quick replies grouped together, labels of at most 25.

Texts are measured before any pattern is run on them, so a megabyte of input costs one
length check; messages never repeat the (possibly huge or hostile) input.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.i18n import N_, _

NAME = re.compile(r"[a-z0-9_]+")
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
#: A named parameter as Meta accepts it.
NAMED_PARAM = re.compile(r"[a-z][a-z0-9_]*")
#: Anything between double braces: checked token by token, so malformed ones are named.
TOKEN = re.compile(r"\{\{(.{0,80}?)\}\}", re.DOTALL)
HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(\s[^<>]{0,200})?/?>")
WORD = re.compile(r"\w+")

CATEGORIES = ("UTILITY", "MARKETING", "AUTHENTICATION")
MAX_NAME = 512
MAX_HEADER = 60
MAX_BODY = 1024
MAX_FOOTER = 60
MAX_BUTTON_TEXT = 25
MAX_BUTTONS = 10
MAX_URL = 2000
MAX_PHONE = 20
MAX_EXAMPLE = 1024
BUTTON_LIMITS = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1}
MEDIA_FORMATS = frozenset({"IMAGE", "VIDEO", "DOCUMENT"})
#: Characters ignored when deciding whether a body starts or ends with a parameter.
_EDGE = " \t\r\n.,;:!?¡¿()\"'-–—…"


@dataclass(frozen=True)
class RuleProblem:
    """One broken rule: the field's path, the message (an English msgid) and its values."""

    path: str
    message: str
    values: Mapping[str, Any] = field(default_factory=dict)
    blocking: bool = True

    @property
    def text(self) -> str:
        """The message in the current language, values filled in."""
        return _(self.message).format(**self.values)

    def __str__(self) -> str:
        return f"{self.path}: {self.text}" if self.path else self.text


def blocking(problems: Sequence[RuleProblem]) -> list[RuleProblem]:
    """The problems that stop a submission (warnings left out)."""
    return [p for p in problems if p.blocking]


def check_template(data: Any) -> list[RuleProblem]:
    """Every way `data` (Meta's template JSON) breaks Meta's rules; empty when none."""
    if not isinstance(data, Mapping):
        return [RuleProblem("", N_("A template must be a JSON object"))]
    checker = _Checker()
    checker.top(data)
    return checker.problems


@dataclass
class _Checker:
    problems: list[RuleProblem] = field(default_factory=list)
    named: bool = False

    def add(self, path: str, message: str, blocks: bool = True, **values: Any) -> None:
        self.problems.append(RuleProblem(path, message, values, blocks))

    # -- template level ---------------------------------------------------------------
    def top(self, data: Mapping[str, Any]) -> None:
        self.name(data.get("name"))
        language = data.get("language")
        if not isinstance(language, str) or not language.strip():
            self.add("language", N_("Choose the template's language"))
        elif len(language) > 15 or not LANGUAGE.fullmatch(language):
            self.add("language", N_("Use a WhatsApp language code such as es, en or en_US"))
        category = data.get("category")
        upper = category.upper() if isinstance(category, str) else None
        if upper not in CATEGORIES:
            self.add("category", N_("The category must be UTILITY, MARKETING or AUTHENTICATION"))
        fmt = data.get("parameter_format", "POSITIONAL")
        if not isinstance(fmt, str) or fmt.upper() not in ("NAMED", "POSITIONAL"):
            self.add("parameter_format", N_("The parameter format must be NAMED or POSITIONAL"))
        else:
            self.named = fmt.upper() == "NAMED"
        parts = self.components(data.get("components"))
        if upper == "AUTHENTICATION" and "BODY" in parts and "text" in parts["BODY"]:
            self.add(
                "category",
                N_(
                    "Authentication templates use WhatsApp's preset one-time-code text: "
                    "create them in WhatsApp Manager, or choose Utility"
                ),
            )

    def name(self, name: Any) -> None:
        if not isinstance(name, str) or not name:
            self.add("name", N_("Give the template a name"))
        elif len(name) > MAX_NAME:
            self.add(
                "name",
                N_("The name is {length:,} characters; at most {limit} are allowed"),
                length=len(name),
                limit=MAX_NAME,
            )
        elif not NAME.fullmatch(name):
            self.add("name", N_("The name may use only lowercase letters, digits and underscores"))

    def components(self, components: Any) -> dict[str, Mapping[str, Any]]:
        parts: dict[str, Mapping[str, Any]] = {}
        if not isinstance(components, Sequence) or isinstance(components, str | bytes):
            self.add("components", N_("components must be a list"))
            return parts
        for index, component in enumerate(components[:20]):
            kind = component.get("type") if isinstance(component, Mapping) else None
            kind = kind.upper() if isinstance(kind, str) else None
            if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
                self.add(
                    f"components[{index}]",
                    N_("Each component must be a HEADER, BODY, FOOTER or BUTTONS object"),
                )
                continue
            assert isinstance(component, Mapping)
            if kind in parts:
                self.add(kind.lower(), N_("A template has at most one {kind}"), kind=kind)
                continue
            parts[kind] = component
        if len(components) > 20:
            self.add("components", N_("A template has at most four components"))
        if "BODY" not in parts:
            self.add("body.text", N_("Write the message body"))
        else:
            self.body(parts["BODY"], only=len(parts) == 1)
        if "HEADER" in parts:
            self.header(parts["HEADER"])
        if "FOOTER" in parts:
            self.footer(parts["FOOTER"])
        if "BUTTONS" in parts:
            self.buttons(parts["BUTTONS"])
        return parts

    # -- texts and their parameters -----------------------------------------------------
    def params(self, path: str, text: str) -> list[str] | None:
        """The text's parameters in order (repeats kept); None when one is malformed."""
        names: list[str] = []
        for match in TOKEN.finditer(text):
            token = match.group(1)
            good = NAMED_PARAM.fullmatch(token) if self.named else token.isdigit()
            if not good:
                if self.named:
                    self.add(
                        path,
                        N_(
                            "Write parameters as {{{{name}}}} in lowercase letters, "
                            "digits and underscores, starting with a letter"
                        ),
                    )
                else:
                    self.add(path, N_("Write positional parameters as {{{{1}}}}, {{{{2}}}}…"))
                return None
            names.append(token)
        rest = TOKEN.sub("", text)
        if "{{" in rest or "}}" in rest:
            self.add(path, N_("A parameter's braces are not closed: write {{{{name}}}}"))
            return None
        return names

    def examples(self, path: str, component: Mapping[str, Any], names: list[str], key: str) -> None:
        """Every parameter needs a sample: `{key}_named_params` or `{key}` (positional)."""
        example = component.get("example")
        example = example if isinstance(example, Mapping) else {}
        given: dict[str, Any] = {}
        if self.named:
            raw = example.get(f"{key}_named_params")
            for item in raw if isinstance(raw, list) else []:
                if isinstance(item, Mapping) and isinstance(item.get("param_name"), str):
                    given[item["param_name"]] = item.get("example")
        else:
            raw = example.get(key)
            if key == "body_text" and isinstance(raw, list) and raw:
                raw = raw[0]
            for position, value in enumerate(raw if isinstance(raw, list) else [], start=1):
                given[str(position)] = value
        for name in dict.fromkeys(names):
            value = given.get(name)
            if not isinstance(value, str) or not value.strip():
                self.add(
                    f"{path}.example.{name}",
                    N_("Give a sample value for {{{{{name}}}}}"),
                    name=name,
                )
            elif len(value) > MAX_EXAMPLE:
                self.add(f"{path}.example.{name}", N_("The sample is too long"))
        for name in given:
            if name not in names and self.named:
                self.add(
                    f"{path}.example.{name[:80]}",
                    N_("A sample for {{{{{name}}}}}, which the text does not use"),
                    name=name[:80],
                )

    def header(self, header: Mapping[str, Any]) -> None:
        fmt = header.get("format", "TEXT")
        fmt = fmt.upper() if isinstance(fmt, str) else None
        if fmt in MEDIA_FORMATS:
            example = header.get("example")
            handles = example.get("header_handle") if isinstance(example, Mapping) else None
            if not isinstance(handles, list) or not handles:
                self.add("header.example", N_("A media header needs a sample file handle"))
            return
        if fmt == "LOCATION":
            return
        if fmt != "TEXT":
            self.add(
                "header.format", N_("The header must be TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION")
            )
            return
        text = header.get("text")
        if not isinstance(text, str) or not text.strip():
            self.add("header.text", N_("Write the header text, or leave the header out"))
            return
        if len(text) > MAX_HEADER:
            self.add(
                "header.text",
                N_("The header is {length:,} characters; at most {limit}"),
                length=len(text),
                limit=MAX_HEADER,
            )
            return
        if "\n" in text or "\r" in text:
            self.add("header.text", N_("The header must fit on one line"))
        names = self.params("header.text", text)
        if names is None:
            return
        if len(names) > 1:
            self.add("header.text", N_("The header may have at most one parameter"))
            return
        self.examples("header", header, names, "header_text")

    def body(self, body: Mapping[str, Any], *, only: bool) -> None:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            self.add("body.text", N_("Write the message body"))
            return
        if len(text) > MAX_BODY:
            self.add(
                "body.text",
                N_("The body is {length:,} characters; at most {limit:,}"),
                length=len(text),
                limit=MAX_BODY,
            )
            return
        names = self.params("body.text", text)
        if names is None:
            return
        if not self.named and names:
            expected = [str(n) for n in range(1, len(set(names)) + 1)]
            if sorted(set(names), key=int) != expected:
                self.add(
                    "body.text",
                    N_("Number positional parameters {{{{1}}}}, {{{{2}}}}… without gaps"),
                )
        if names:
            self.placement(text, names)
        self.examples("body", body, names, "body_text")
        if HTML_TAG.search(text):
            self.add(
                "body.text",
                N_("WhatsApp shows HTML tags as typed: it does not format them"),
                blocks=False,
            )

    def placement(self, text: str, names: list[str]) -> None:
        stripped = text.strip(_EDGE)
        if stripped.startswith("{{") or stripped.endswith("}}"):
            self.add(
                "body.text",
                N_(
                    "The body may not start or end with a parameter: put "
                    "some words before and after it"
                ),
            )
        if re.search(r"\}\}\s*\{\{", text):
            self.add(
                "body.text", N_("Two parameters may not stand side by side: put words between them")
            )
        words = len(WORD.findall(TOKEN.sub(" ", text)))
        if words < 2 * len(names) + 1:
            self.add(
                "body.text",
                N_("Too many parameters for so few words: Meta's review often rejects this"),
                blocks=False,
            )

    def footer(self, footer: Mapping[str, Any]) -> None:
        text = footer.get("text")
        if not isinstance(text, str) or not text.strip():
            self.add("footer.text", N_("Write the footer text, or leave the footer out"))
        elif len(text) > MAX_FOOTER:
            self.add(
                "footer.text",
                N_("The footer is {length:,} characters; at most {limit}"),
                length=len(text),
                limit=MAX_FOOTER,
            )
        elif "{{" in text:
            self.add("footer.text", N_("The footer may not have parameters"))

    # -- buttons ------------------------------------------------------------------------
    def buttons(self, component: Mapping[str, Any]) -> None:
        buttons = component.get("buttons")
        if not isinstance(buttons, list) or not buttons:
            self.add("buttons", N_("Add at least one button, or leave the buttons out"))
            return
        if len(buttons) > MAX_BUTTONS:
            self.add("buttons", N_("A template has at most {limit} buttons"), limit=MAX_BUTTONS)
            return
        kinds: list[str] = []
        for index, button in enumerate(buttons):
            kinds.append(self.button(f"buttons[{index}]", button))
        for kind, count in Counter(kinds).items():
            limit = BUTTON_LIMITS.get(kind)
            if limit is not None and count > limit:
                self.add(
                    "buttons", N_("At most {limit} buttons of type {kind}"), limit=limit, kind=kind
                )
        quick = [i for i, kind in enumerate(kinds) if kind == "QUICK_REPLY"]
        if quick and quick[-1] - quick[0] + 1 != len(quick):
            self.add(
                "buttons",
                N_("Quick replies must be next to each other, before or after the other buttons"),
            )
        labels = [b.get("text") for b in buttons if isinstance(b, Mapping)]
        if len({x for x in labels if isinstance(x, str)}) < len(labels):
            self.add("buttons", N_("Two buttons have the same label"))

    def button(self, path: str, button: Any) -> str:
        if not isinstance(button, Mapping):
            self.add(path, N_("A button must be an object"))
            return ""
        kind = button.get("type")
        kind = kind.upper() if isinstance(kind, str) else ""
        if kind not in BUTTON_LIMITS:
            self.add(
                f"{path}.type", N_("Buttons may be QUICK_REPLY, URL, PHONE_NUMBER or COPY_CODE")
            )
            return kind
        text = button.get("text")
        if kind != "COPY_CODE":
            if not isinstance(text, str) or not text.strip():
                self.add(f"{path}.text", N_("Write the button's label"))
            elif len(text) > MAX_BUTTON_TEXT:
                self.add(
                    f"{path}.text",
                    N_("The label is {length:,} characters; at most {limit}"),
                    length=len(text),
                    limit=MAX_BUTTON_TEXT,
                )
            elif "{{" in text or "\n" in text:
                self.add(f"{path}.text", N_("A label is one line of plain text"))
        if kind == "URL":
            self.url(path, button)
        elif kind == "PHONE_NUMBER":
            phone = button.get("phone_number")
            digits = phone[1:] if isinstance(phone, str) and phone.startswith("+") else phone
            if not isinstance(digits, str) or not digits.isdigit() or len(digits) > MAX_PHONE:
                self.add(f"{path}.phone_number", N_("Give the phone number in +34… form"))
        return kind

    def url(self, path: str, button: Mapping[str, Any]) -> None:
        url = button.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            self.add(f"{path}.url", N_("Give an http(s) address"))
            return
        if len(url) > MAX_URL:
            self.add(
                f"{path}.url", N_("The address is longer than {limit:,} characters"), limit=MAX_URL
            )
            return
        tokens = TOKEN.findall(url)
        if len(tokens) > 1 or (tokens and not url.endswith("}}")):
            self.add(f"{path}.url", N_("An address may end with one parameter, nowhere else"))
        elif tokens:
            example = button.get("example")
            if not isinstance(example, list) or not example or not isinstance(example[0], str):
                self.add(f"{path}.example", N_("Give a sample address ending"))
