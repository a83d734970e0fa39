"""A person's surname and a phone's last digits: what a page shows of them and what dispatch searches by.

One rule for both (docs/decisions.md, "Task search"): a Chinese name's surname is its first character, or its
first two where those are a compound surname (欧阳, 司马, ...); a Latin name's is its last word.
"""
import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# The compound surnames of the Hundred Family Surnames still in use; any other name starts with a one-character one.
COMPOUND_SURNAMES = frozenset((
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 司空 夏侯 轩辕 令狐 端木 独孤 南宫 西门 百里 呼延 "
    "澹台 公冶 太史 申屠 钟离 闻人 赫连 濮阳 万俟 第五 左丘 东郭 拓跋 公羊 淳于 单于 羊舌 微生 梁丘 闾丘 亓官 "
    "司寇 子车 颛孙 壤驷 公良 漆雕 乐正 宰父 谷梁 段干 百里 东门 公西 南门 呼延 归海 羊角 微生 第五").split())


def is_chinese(text: str) -> bool:
    """Whether a name (or a search term) starts with a Chinese character."""
    return bool(_CJK.match(text.strip()))


def surname(name: str) -> str:
    """A Chinese name's surname (a compound one whole), a Latin name's last word; empty for an empty name."""
    name = name.strip()
    if not name:
        return ""
    if _CJK.match(name):
        compact = "".join(name.split())
        return compact[:2] if compact[:2] in COMPOUND_SURNAMES else compact[0]
    return name.split()[-1]


def surname_key(name: str | None) -> str | None:
    """What a name is searched by: its surname, case-folded (None without one)."""
    found = surname(name or "")
    return found.casefold()[:100] if found else None


def phone_suffix(phone: str | None) -> str | None:
    """A phone's last four digits (None with fewer): the only part of it a search needs or keeps apart."""
    digits = "".join(ch for ch in phone or "" if ch.isdigit() and ch.isascii())
    return digits[-4:] if len(digits) >= 4 else None


def phone_key(phone: str | None) -> str:
    """One customer's phone however it was written (+86 138-0000-1111, 008613800001111, 13800001111): its ASCII
    digits, without China's country code before an 11-digit mobile number."""
    digits = "".join(ch for ch in phone or "" if ch.isdigit() and ch.isascii())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix):]
    return digits
