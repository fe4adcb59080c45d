"""No page shows English the translator never saw: text handed straight to a Streamlit
display call (st.title, st.button, label=, help=, ...) must go through `_()`.

An AST scan of dashboard/: a string literal or f-string with words in it, passed to a
display call without `_()`, fails. Text that is not language (icons, emoji, the product's
name, markdown punctuation) passes; ALLOWED names the few literal texts allowed on purpose.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"

#: Streamlit calls whose first argument (or `label`/`help`/...) is text a person reads;
#: also called on columns, containers, forms and tabs (`c1.metric(...)`).
DISPLAY = frozenset(
    [
        "title",
        "header",
        "subheader",
        "caption",
        "markdown",
        "write",
        "text",
        "button",
        "form_submit_button",
        "download_button",
        "link_button",
        "page_link",
        "text_input",
        "text_area",
        "number_input",
        "selectbox",
        "multiselect",
        "radio",
        "checkbox",
        "toggle",
        "date_input",
        "time_input",
        "file_uploader",
        "slider",
        "select_slider",
        "color_picker",
        "metric",
        "info",
        "warning",
        "error",
        "success",
        "toast",
        "expander",
        "tabs",
        "spinner",
        "popover",
        "segmented_control",
        "pills",
        "status",
        "feedback",
        "chat_input",
        "dialog",
        "Page",
        "TextColumn",
        "NumberColumn",
        "DatetimeColumn",
        "DateColumn",
        "CheckboxColumn",
        "LinkColumn",
        "SelectboxColumn",
        "ListColumn",
        "ProgressColumn",
        "Column",
    ]
)
TEXT_KEYWORDS = frozenset({"label", "help", "placeholder", "title", "caption", "body", "text"})
#: Literal texts that are the same in every language (file name, text).
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {("login.py", "📦 wanotify"), ("send.py", "https://…/po.pdf")}  # a name, an example URL
)
_ICON = re.compile(r"`[^`]*`|:material/[a-z_0-9]+:|:[a-z]+\[|[*_`|#>\-\[\]().,:;·–—/%{}\s\d]")


def _has_words(text: str) -> bool:
    """Whether `text` still has letters once icons, colour tags and punctuation go."""
    return bool(re.search(r"[^\W\d_]{2,}", _ICON.sub(" ", text)))


def _is_translated(node: ast.AST) -> bool:
    """`_("...")`, `ngettext(...)`, or `_("...").format(...)`."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id in {"_", "ngettext"}:
            return True
        if isinstance(func, ast.Attribute) and func.attr == "format":
            return _is_translated(func.value)
    return False


def _untranslated(node: ast.AST) -> list[str]:
    """The literal texts with words in `node`, outside any `_()`."""
    if _is_translated(node):
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if _has_words(node.value) else []
    if isinstance(node, ast.JoinedStr):
        literal = "".join(
            part.value
            for part in node.values
            if isinstance(part, ast.Constant) and isinstance(part.value, str)
        )
        found = [literal] if _has_words(literal) else []
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                found += _untranslated(part.value)
        return found
    if isinstance(node, ast.BinOp):
        return _untranslated(node.left) + _untranslated(node.right)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [text for item in node.elts for text in _untranslated(item)]
    if isinstance(node, ast.IfExp):
        return _untranslated(node.body) + _untranslated(node.orelse)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and (
            node.func.attr == "join"  # "\n".join([...])
        )
    ):
        return [t for arg in node.args for t in _untranslated(arg)]
    return []


def untranslated_texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every untranslated literal passed to a display call in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = (
            node.func.attr
            if isinstance(node.func, ast.Attribute)
            else (node.func.id if isinstance(node.func, ast.Name) else "")
        )
        if name not in DISPLAY or "log" in ast.unparse(node.func).lower():
            continue  # logger.error(...) is for the operator's log, not a page
        shown = list(node.args[:1]) + [k.value for k in node.keywords if k.arg in TEXT_KEYWORDS]
        if name == "tabs":
            shown = list(node.args)
        for argument in shown:
            for text in _untranslated(argument):
                if (path.name, text) not in ALLOWED:
                    found.append((node.lineno, text))
    return found


FILES = sorted(
    p for p in DASHBOARD.rglob("*.py") if p.name != "__init__.py" or p.parent.name == "views"
)
#: Pages whose conversion to `_()` is not finished: each must fail the scan (strict),
#: so this list only shrinks. Remove a page when it passes.
PENDING: frozenset[str] = frozenset()


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DASHBOARD)))
def test_page_shows_no_untranslated_literal(path: Path) -> None:
    found = untranslated_texts(path)
    if str(path.relative_to(DASHBOARD)) in PENDING:
        assert found, f"{path.name} is converted: remove it from PENDING"
        pytest.xfail(f"not converted yet: {len(found)} texts")
    assert not found, "\n".join(f"{path.name}:{line}: {text!r}" for line, text in found)


def test_the_scan_catches_literals_and_passes_translated_text(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import streamlit as st\n"
        "from core.i18n import _\n"
        "st.title('Bulk send')\n"  # 3: caught
        "st.button(_('Log in'), icon=':material/login:')\n"
        "c1.metric(f'Sent {n}', value)\n"  # 5: caught on a column
        "st.caption(_('Sent {n}').format(n=n))\n"
        "st.selectbox(label='Tenant', options=x)\n"  # 7: caught as label=
        "st.markdown(':material/check:')\n"
        "st.tabs([_('One'), 'Two'])\n"  # 9: caught in a list
        "st.markdown(f'**{name}** · {role}')\n"
        "st.info(_('Fine'), help='Shown on hover')\n"  # 11: caught as help=
        "logger.error('configuration refused: %s', exc)\n"
        "st.code('`wanotify users add admin`')\n"
    )
    assert [line for line, _text in untranslated_texts(sample)] == [3, 5, 7, 9, 11]


def test_no_translation_is_hidden_inside_an_f_string() -> None:
    """pybabel does not look inside f-strings: `f"{_('Stage')}"` would never reach the
    catalogue. Build such text with `.format()` or `+` instead."""
    hidden = []
    for folder in ("core", "dashboard"):
        for path in sorted((DASHBOARD.parent / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.JoinedStr):
                    for inner in ast.walk(node):
                        if (
                            isinstance(inner, ast.Call)
                            and isinstance(inner.func, ast.Name)
                            and inner.func.id in {"_", "ngettext", "N_"}
                            and inner.args
                            and isinstance(inner.args[0], ast.Constant)
                        ):  # `_(variable)` is fine: its msgid is marked where it is written
                            hidden.append(f"{path.relative_to(DASHBOARD.parent)}:{node.lineno}")
    assert not hidden, hidden


def test_no_module_that_translates_reuses_underscore_as_a_variable() -> None:
    """`_, x = ...` in a function that also calls `_()` turns `_` into that function's
    local: the call fails with UnboundLocalError, only on the page that runs it."""
    reused = []
    for folder in ("core", "dashboard"):
        for path in sorted((DASHBOARD.parent / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            imports = any(
                isinstance(node, ast.ImportFrom)
                and node.module == "core.i18n"
                and any(alias.name == "_" for alias in node.names)
                for node in tree.body
            )
            if not imports:
                continue
            generated = {
                id(target)
                for node in ast.walk(tree)
                if isinstance(node, ast.comprehension)
                for target in ast.walk(node.target)
            }
            reused += [
                f"{path.relative_to(DASHBOARD.parent)}:{node.lineno}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Name)
                and node.id == "_"
                and isinstance(node.ctx, ast.Store)
                and id(node) not in generated
            ]
    assert not reused, reused
