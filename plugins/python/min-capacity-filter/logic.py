"""The decisions of min-capacity-filter, apart from the component bindings so that `python3 -m unittest` can
test them on this machine."""

import math
import re
import unicodedata


def keeps(capacity: float | None, minimum: float) -> bool:
    """Whether a plant of `capacity` passes at `minimum`. None (no image) is kept: a missing image
    must not be mistaken for a small plant; later stages see it."""
    return capacity is None or capacity >= minimum


# Numbers are read as Rust's `raw.trim().parse::<f64>()` reads them, so a plugin behaves the same
# in every language: Python's float() would also take "1_000" and non-ASCII digits.
# Rust's trim() strips Unicode's White_Space characters, not quite the set str.strip() strips.
_WHITESPACE = "".join(map(chr, [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                                0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))
_NUMBER = re.compile(r"[+-]?(inf|infinity|nan|([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?)", re.IGNORECASE)


def parse_finite(key: str, raw: str) -> float:
    """The finite number in config `key`'s text `raw`, or ValueError with the Rust plugin's message.
    "NaN" and "inf" are numbers but refused: as a bound they would silently change every answer."""
    text = raw.strip(_WHITESPACE)
    if not text:
        raise ValueError(f"{key}: {quoted(raw)} is not a number (cannot parse float from empty string)")
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{key}: {quoted(raw)} is not a number (invalid float literal)")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{key}: {quoted(raw)} is not a finite number")
    return value


_ESCAPES = {"\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", '"': '\\"', "\0": "\\0"}
# Control, format, unassigned, separator and combining characters, which Rust's `{:?}` escapes.
_ESCAPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs", "Mn", "Me"}


def quoted(text: str) -> str:
    """`text` in double quotes as Rust's `{:?}` writes it, so messages match a Rust plugin's."""
    return '"' + "".join(_escaped(ch) for ch in text) + '"'


def _escaped(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch != " " and unicodedata.category(ch) in _ESCAPED_CATEGORIES:
        return f"\\u{{{ord(ch):x}}}"
    return ch
