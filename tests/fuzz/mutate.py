"""Seeded mutations of JSON documents, down to the bytes: what a hostile or broken sender posts.

`mutate(doc, rng)` returns the bytes of `doc` changed by one to three operations and the
names of those operations. Tree operations change a value's type, drop keys, plant huge
strings, odd Unicode, deep nesting or duplicated keys; byte operations cut the body short,
break its UTF-8 or add a byte order mark or trailing junk. Everything is drawn from `rng`,
so one seed always gives the same bodies.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Raw:
    """JSON text written as it is (what a serializer would never produce)."""

    text: str


@dataclass(frozen=True)
class DupKeys:
    """An object written with the same key more than once (pairs in order)."""

    pairs: tuple[tuple[str, Any], ...]


#: Strings a careless or hostile sender puts in any field.
ODD_TEXT = (
    "",
    " ",
    "\u00a0\u00a0\u00a0",
    "A\u202eLIAME\u200b",
    "\u200b\u200c\u200d\u2060\ufeff",
    "\u0000nul\u0000",
    "e" + "\u0301" * 200,
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\ufffd\uffff\U0010ffff",
    "مرحبا بالعالم",
    "東京都千代田区",
    "𝕳𝖆𝖗𝖎𝖓𝖆𝖘",
    "![x](http://127.0.0.1:9/pixel.png)",
    "[Session expired: log in here](http://127.0.0.1:9/login)",
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "'; DROP TABLE whatsapp_messages; --",
    "%s%s%n%x{0}{{1}}${jndi:ldap://127.0.0.1:9/a}",
    "=1+2",
    "+34 612 345 678",
    "\r\n\tline\r\nbreaks",
    "../../../../etc/passwd",
    "9" * 40,
)

#: JSON that parsers disagree on or refuse (written raw, inside a document).
ODD_JSON = (
    '"\\ud800 lone surrogate"',
    '"\\udfff\\ud800"',
    '"\\u0000"',
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-0",
    "1" + "0" * 400,
    "0.1e-400",
    "tru",
    "'single'",
    "undefined",
)


def odd_scalar(rng: random.Random) -> Any:
    """A value of a random, probably wrong type."""
    pick = rng.randrange(12)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice((True, False))
    if pick == 2:
        return rng.choice((0, -1, 1, 2**31, -(2**63), 2**70))
    if pick == 3:
        return rng.choice((0.5, -1.5e308, 1e-320, 3.0))
    if pick == 4:
        return rng.choice(([], [None], [1, "a"], {}))
    if pick == 5:
        return {"nested": rng.choice(ODD_TEXT)}
    if pick == 6:
        return Raw(rng.choice(ODD_JSON))
    return rng.choice(ODD_TEXT)


def huge_text(rng: random.Random) -> str:
    """A long string: a few KiB to a few hundred KiB, ASCII or not."""
    size = rng.choice((2_000, 20_000, 70_000, 300_000))
    unit = rng.choice(("x", "ñ", "😀", "A\u0301", "\u202e"))
    return unit * (size // len(unit.encode("utf-8")))


def deep(rng: random.Random) -> Raw:
    """Nesting deep enough to break recursive parsers (or just deep)."""
    depth = rng.choice((64, 300, 1_000, 20_000))
    if rng.random() < 0.5:
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


def dumps(value: Any, rng: random.Random | None = None) -> str:
    """JSON text of `value`, honouring `Raw` and `DupKeys` (ASCII escapes at random)."""
    ascii_only = rng is not None and rng.random() < 0.3
    return _dump(value, ascii_only)


def _dump(value: Any, ascii_only: bool) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, DupKeys):
        pairs = value.pairs
    elif isinstance(value, dict):
        pairs = tuple(value.items())
    elif isinstance(value, list):
        return "[" + ",".join(_dump(item, ascii_only) for item in value) + "]"
    else:
        return json.dumps(value, ensure_ascii=ascii_only)
    return (
        "{"
        + ",".join(
            json.dumps(k, ensure_ascii=ascii_only) + ":" + _dump(v, ascii_only) for k, v in pairs
        )
        + "}"
    )


def _containers(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every dict and list in `doc` (the root is `()`)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        found.append(path)
        for key, value in doc.items():
            found += _containers(value, (*path, key))
    elif isinstance(doc, list):
        found.append(path)
        for index, value in enumerate(doc):
            found += _containers(value, (*path, index))
    return found


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _mutate_tree(doc: Any, rng: random.Random) -> str:
    """Change one place of `doc` in place; the operation's name."""
    holder = _at(doc, rng.choice(_containers(doc)))
    keys: list[Any] = list(holder) if isinstance(holder, dict) else list(range(len(holder)))
    op = rng.choice(
        ("wrong_type", "wrong_type", "drop", "huge_string", "odd_unicode", "deep", "dup_key")
    )
    if not keys:
        holder_add = rng.choice(ODD_TEXT)
        if isinstance(holder, dict):
            holder["x"] = holder_add
        else:
            holder.append(holder_add)
        return "filled_empty"
    key = rng.choice(keys)
    if op == "drop":
        del holder[key]
    elif op == "wrong_type":
        holder[key] = odd_scalar(rng)
    elif op == "huge_string":
        holder[key] = huge_text(rng)
    elif op == "odd_unicode":
        holder[key] = rng.choice(ODD_TEXT)
    elif op == "deep":
        holder[key] = deep(rng)
    elif isinstance(holder, dict):  # dup_key: the original and another value, either order
        pairs = [(k, v) for k, v in holder.items()]
        other = (key, odd_scalar(rng))
        pairs.insert(rng.randrange(len(pairs) + 1), other)
        holder.clear()
        holder["__dup__"] = DupKeys(tuple(pairs))
    else:
        holder[key] = odd_scalar(rng)
    return op


def _lift_dups(doc: Any) -> Any:
    """Replace `{"__dup__": DupKeys}` placeholders by the DupKeys themselves."""
    if isinstance(doc, dict):
        if set(doc) == {"__dup__"} and isinstance(doc["__dup__"], DupKeys):
            inner = doc["__dup__"]
            return DupKeys(tuple((k, _lift_dups(v)) for k, v in inner.pairs))
        return {k: _lift_dups(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_lift_dups(v) for v in doc]
    return doc


def _mutate_bytes(body: bytes, rng: random.Random) -> tuple[bytes, str]:
    op = rng.choice(("truncate", "bad_utf8", "bom", "trailing_junk", "leading_space"))
    if op == "truncate" and len(body) > 1:
        return body[: rng.randrange(1, len(body))], op
    if op == "bad_utf8":
        at = rng.randrange(len(body) + 1)
        return body[:at] + rng.choice((b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\xf8\x88")) + body[
            at:
        ], op
    if op == "bom":
        return b"\xef\xbb\xbf" + body, op
    if op == "trailing_junk":
        return body + rng.choice((b"}", b"{}", b"\x00", b" garbage", b"\n\n")), op
    return b" \n\t" + body, "leading_space"


def mutate(doc: Any, rng: random.Random) -> tuple[bytes, tuple[str, ...]]:
    """`doc` as bytes after one to three random operations; the bytes and the operations."""
    work = copy.deepcopy(doc)
    ops: list[str] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        if rng.random() < 0.8:
            if not isinstance(work, dict | list):
                work = {"value": work}
            ops.append(_mutate_tree(work, rng))
    body = dumps(_lift_dups(work), rng).encode("utf-8", "surrogatepass")
    if not ops or rng.random() < 0.2:
        body, op = _mutate_bytes(body, rng)
        ops.append(op)
    return body, tuple(ops)
