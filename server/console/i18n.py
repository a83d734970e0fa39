"""The console's words: each page module registers its strings; Chinese by default, English on request."""
from datetime import datetime

from flask import request

from server.clock import local_zone

LANGS = ("zh", "en")
LANG_COOKIE = "fo_console_lang"
_CACHE = "fieldops.console_lang"
_TEXT: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}


def register(texts: dict[str, dict[str, str]]) -> None:
    """Add a module's strings ({"zh": {key: text}, "en": {...}}); a key two modules define differently is a bug."""
    for lang, entries in texts.items():
        if lang not in LANGS:
            raise ValueError(f"unknown console language {lang!r}")
        for key, text in entries.items():
            if _TEXT[lang].get(key, text) != text:
                raise ValueError(f"console text {key!r} ({lang}) is registered twice, differently")
        _TEXT[lang].update(entries)


def chosen_language() -> str | None:
    """The language this request switches to (?lang=), if it names one."""
    lang = request.args.get("lang")
    return lang if lang in LANGS else None


def language() -> str:
    """The page language: ?lang=, else the switch's cookie, else the browser's preference, else Chinese."""
    lang = request.environ.get(_CACHE)  # the request's own: g can outlive a request (a test's app context)
    if lang is None:
        cookie = request.cookies.get(LANG_COOKIE)
        lang = request.environ[_CACHE] = (chosen_language() or (cookie if cookie in LANGS else None)
                                          or request.accept_languages.best_match(LANGS, default="zh"))
    return lang


def t(key: str, **values) -> str:
    """The text of a key in the page language (Chinese if it has no translation, the key if neither)."""
    text = _TEXT[language()].get(key) or _TEXT["zh"].get(key) or key
    return text.format(**values) if values else text


def has_text(key: str) -> bool:
    """Whether a key is registered (in Chinese, which every key has)."""
    return key in _TEXT["zh"]


def local_time(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time in the depot's zone ('' for none)."""
    return at.astimezone(local_zone()).strftime(fmt) if at is not None else ""


def item_label(item) -> str:
    """A checklist item's label in the page language (a dict or a defect with label_zh/label_en), else its code."""
    get = item.get if isinstance(item, dict) else lambda name: getattr(item, name, None)
    return get(f"label_{language()}") or get("label_en") or get("label_zh") or get("label") or get("code") \
        or get("item") or ""


def money(fen: int | None) -> str:
    """An amount in fen as people write it: ¥12.34, -¥0.50 ('' for none)."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"
