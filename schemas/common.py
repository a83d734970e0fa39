"""Building blocks shared by every schema."""
import re
import unicodedata

import marshmallow as ma
from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.limits import EARLIEST_TIME, LATEST_TIME, MAX_INT32, MAX_INT64, MAX_MONEY

# Characters as code point ranges, written once: the checks below and the patterns the spec
# publishes (text_pattern) are built from them. Never meant as text: C0/C1 controls (NUL, ESC, ...)
# and the bidi overrides and isolates that make a name display as something else (unpaired
# surrogates too, which no JSON document carries). Free text may still hold \t and \n.
_UNSAFE = ((0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x9F), (0x202A, 0x202E), (0x2066, 0x2069))
# A one-line value (a name, a code, a phone) holds no line breaks or tabs either.
_BREAKS = ((0x09, 0x0A), (0x2028, 0x2029))
# The other white space strip() removes (controls aside).
_SPACES = ((0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x202F, 0x202F), (0x205F, 0x205F),
           (0x3000, 0x3000))
# Characters that show nothing: the format characters (category Cf, as of Unicode 15.1: Python 3.13's) and Unicode's default-ignorable
# code points (DerivedCoreProperties.txt: zero-width spaces and joiners, the soft hyphen, word joiners
# and invisible operators, the BOM, Hangul fillers, variation selectors, tag characters), less the
# unsafe ones above. A text holding one looks like the same text without it, so two names a person
# cannot tell apart would be two names. Emoji are the exception (_in_emoji).
_INVISIBLE = ((0xAD, 0xAD), (0x34F, 0x34F), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F),
              (0x890, 0x891), (0x8E2, 0x8E2), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
              (0x200B, 0x200F), (0x2060, 0x2065), (0x206A, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F),
              (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
              (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
_SURROGATES = ((0xD800, 0xDFFF),)


def _class(*sets: tuple[tuple[int, int], ...]) -> str:
    """The inside of a regex character class naming these ranges.

    BMP characters as \\uXXXX escapes, which ECMA-262 (the spec's patterns), Python and Rust read
    alike; characters beyond it as themselves, which every reader by code point (Python, Rust,
    ECMA-262 with the u flag) takes as one character.
    """
    def char(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)
    spans = sorted(span for ranges in sets for span in ranges)
    return "".join(char(lo) if lo == hi else f"{char(lo)}-{char(hi)}" for lo, hi in spans)


_UNSAFE_IN_TEXT = re.compile(f"[{_class(_UNSAFE, _SURROGATES)}]")
_UNSAFE_IN_LINE = re.compile(f"[{_class(_BREAKS)}]")
_SURROGATE = re.compile(f"[{_class(_SURROGATES)}]")
_INVISIBLE_CHAR = re.compile(f"[{_class(_INVISIBLE)}]")
_VISIBLE_CHAR = re.compile(f"[^{_class(_UNSAFE, _BREAKS, _SPACES, _INVISIBLE, _SURROGATES)}]")
_ZWJ, _VS15, _VS16, _KEYCAP = "\u200d", "\ufe0e", "\ufe0f", "\u20e3"
UNSAFE_MESSAGE = "Must not contain control characters, direction overrides or unpaired surrogates."
INVISIBLE_MESSAGE = ("Must not contain invisible characters (zero-width spaces or joiners, soft hyphens, "
                     "byte-order marks, variation selectors) outside an emoji.")
OUT_OF_RANGE_INT = f"Must be between {-MAX_INT64} and {MAX_INT64}."


def _unsafe_value_error(value) -> str | None:
    """Why a loaded value cannot be stored (a string with unsafe characters, an int beyond 64 bits)."""
    if isinstance(value, str) and _UNSAFE_IN_TEXT.search(value):
        return UNSAFE_MESSAGE
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT64:
        return OUT_OF_RANGE_INT
    if isinstance(value, list):
        return next(filter(None, map(_unsafe_value_error, value)), None)
    if isinstance(value, dict) and _holds_surrogate(value):
        return UNSAFE_MESSAGE
    return None


def _holds_surrogate(value) -> bool:
    """True if a free-form structure (an op payload) holds a lone surrogate: no encoder can store it.

    Other characters in it are left to the schema that reads the structure later.
    """
    if isinstance(value, str):
        return bool(_SURROGATE.search(value))
    if isinstance(value, dict):
        return any(_holds_surrogate(k) or _holds_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_holds_surrogate, value))
    return False


def _in_emoji(value: str, i: int) -> bool:
    """Whether the joiner or selector at i is part of an emoji, where it shows as one picture (❤️, 👩‍💻, 1️⃣).

    A selector follows a symbol (or a keycap's digit); a zero-width joiner joins two symbols (the first
    maybe with its selector or skin tone). Between letters they would only hide a difference.
    """
    before = value[i - 1] if i else ""
    after = value[i + 1] if i + 1 < len(value) else ""
    if value[i] == _ZWJ:
        return bool(before and after) and (before == _VS16 or unicodedata.category(before) in ("So", "Sk")) \
            and unicodedata.category(after) == "So"
    if value[i] in (_VS15, _VS16) and before:
        return unicodedata.category(before) in ("So", "Sm", "Po") or (before in "0123456789#*" and after == _KEYCAP)
    return False


def holds_invisible(value: str) -> bool:
    """Whether a text holds a character that shows nothing (a format character or a default-ignorable one)."""
    return any(not _in_emoji(value, found.start()) for found in _INVISIBLE_CHAR.finditer(value))


def says_something(value: str) -> bool:
    """Whether a text shows anything: not only spaces and invisible characters (zero-width, soft hyphens)."""
    return _VISIBLE_CHAR.search(value) is not None


# A character of a URL's path, query or fragment, as Text takes it: nothing unsafe or invisible, no white space.
URL_CHAR = f"[^{_class(_UNSAFE, _BREAKS, _SPACES, _INVISIBLE)}]"


# What a value taken as sent (a password: never stripped or folded) may hold: anything but the unsafe characters
# every string is refused for (Schema); the spec publishes it so that generated values are ones the server takes.
SAFE_PATTERN = f"^[^{_class(_UNSAFE)}]*$"


def text_pattern(*, multiline: bool = False, blank: bool = False) -> str:
    """The pattern a Text field publishes, for the value as sent: the characters it may hold, and
    (unless blank) one that shows. An emoji's own joiner or selector is left out: a pattern cannot
    say where it stands, and leaving it out only refuses what the server would take.

    Classes are negated and short: a generator reading a pattern (Hypothesis) pays for every
    character a positive class names.
    """
    char = f"[^{_class(_UNSAFE, _INVISIBLE, *(() if multiline else (_BREAKS,)))}]"
    # CRLF is read as LF in free text; a lone CR is a control character.
    if multiline:
        char = rf"(?:\r\n|{char})"
    if blank:
        return f"^{char}*$"
    # Before the first character that shows, only white space: one way to match, so checking a
    # long value stays linear.
    unseen = rf"(?:\r\n|[{_class(_SPACES, _BREAKS)}])" if multiline else f"[{_class(_SPACES)}]"
    return f"^{unseen}*[^{_class(_UNSAFE, _BREAKS, _SPACES, _INVISIBLE)}]{char}*$"


class Schema(ma.Schema):
    """Base: unknown fields are an error, so typos never pass silently."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    # A schema whose values another layer decides one by one (a push op's envelope:
    # the engine rejects a bad op alone, so one op never refuses its batch) opts out.
    refuse_unsafe_values = True

    @ma.post_load
    def _refuse_unsafe_values(self, data, **_kw):
        """Every schema, even a field declared without Text or integer(), refuses what cannot be stored."""
        if not self.refuse_unsafe_values:
            return data
        errors = {name: [message] for name, value in data.items()
                  if (message := _unsafe_value_error(value))}
        if errors:
            raise ValidationError(errors)
        return data


class PatchSchema(Schema):
    """Base of partial updates: a body that changes nothing is an error, not a silent 200."""

    @validates_schema
    def _changes_something(self, data, **_kw):
        """At least one field must be given."""
        if not data:
            raise ValidationError("Give at least one field to change.")


class _FullMatch(validate.Regexp):
    """Regexp over the whole value; its pattern stays ECMA-262, as the OpenAPI spec publishes it."""

    def __call__(self, value):
        """fullmatch: `$` alone would let a trailing newline through."""
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def full_match(pattern: str, error: str) -> validate.Regexp:
    """A regex validator over the whole value (a trailing newline does not pass)."""
    return _FullMatch(rf"^(?:{pattern})$", error=error)


class Text(fields.String):
    """A string that means what it says: no control, bidi or invisible characters, no surrogates, not blank.

    Every human text on the wire is one (names, addresses, notes, reasons, identifiers).
    Surrounding whitespace is stripped before the length and pattern checks.
    Only multiline (free-text) fields may hold tabs and line breaks inside; CRLF
    is stored as LF. upper=True normalises identifiers to upper case. The spec
    publishes the length and, unless the field has its own pattern or choices,
    text_pattern(): what a value must be, as the client sends it.
    """

    default_error_messages = {"unsafe": UNSAFE_MESSAGE, "blank": "Must not be blank.",
                              "line": "Must be a single line without tabs.", "invisible": INVISIBLE_MESSAGE}

    def __init__(self, max_len: int, *, min_len: int = 1, multiline: bool = False,
                 upper: bool = False, pattern: str | None = None,
                 pattern_error: str = "Not in the expected format.", **kw):
        """Build the field; extra keywords go to marshmallow's String."""
        if min_len > 1 and not pattern:
            raise ValueError("A Text of at least 2 characters says so in its own pattern: the published "
                             "length counts the spaces it strips.")
        self.length = validate.Length(min=min_len, max=max_len)
        # An identifier's length is that of the value as sent: folding may lengthen it (ﬀ is FF), and
        # the spec can only speak of what the client sends. Identifiers that are stored have a pattern
        # whose characters fold one to one, so they still fit their column.
        validators = [] if upper else [self.length]
        if pattern:
            validators.append(full_match(pattern, pattern_error))
        extra = kw.pop("validate", None)
        if extra:
            validators.append(extra)
        published = {"minLength": min_len, "maxLength": max_len} if upper else {}
        if not pattern and not isinstance(extra, validate.OneOf):
            published["pattern"] = text_pattern(multiline=multiline, blank=not min_len)
        super().__init__(validate=validators, metadata={**published, **kw.pop("metadata", {})}, **kw)
        self.min_len, self.max_len, self.multiline, self.upper = min_len, max_len, multiline, upper

    def _deserialize(self, value, attr, data, **kwargs):
        """Refuse unsafe characters, then strip (and upper-case) the value."""
        value = super()._deserialize(value, attr, data, **kwargs)
        if self.multiline:
            value = value.replace("\r\n", "\n")
        if _UNSAFE_IN_TEXT.search(value):
            raise self.make_error("unsafe")
        value = value.strip()
        if not self.multiline and _UNSAFE_IN_LINE.search(value):
            raise self.make_error("line")
        if holds_invisible(value):
            raise self.make_error("invisible")
        if self.min_len and not says_something(value):
            raise self.make_error("blank")
        if not self.upper:
            return value
        self.length(value)
        # An identifier is unique as people read it: full-width and other compatibility forms
        # fold to their plain letters (ＥＩ００１ is EI001).
        return unicodedata.normalize("NFKC", value).strip().upper()


def text(max_len: int, *, required: bool = True, min_len: int = 1, **kw) -> Text:
    """A stripped, length-checked, safe string field (see Text)."""
    return Text(max_len, required=required, min_len=min_len, **kw)


def identifier(max_len: int, *, required: bool = True, **kw) -> Text:
    """An identifier (employee number, waybill, plate): trimmed and upper-cased, so unique as normalised.

    One that is stored takes a pattern (CODE, or its own) of characters that fold one to one.
    """
    return Text(max_len, upper=True, required=required, **kw)


# A code people type (an employee number, a depot): letters, digits and a few separators.
CODE = {"pattern": r"[A-Za-z0-9][A-Za-z0-9._/\-]*",
        "pattern_error": "Letters, digits and . _ / - only, starting with a letter or digit."}


def phone(**kw) -> Text:
    """A phone number: digits, spaces and dashes, an optional leading +; 6-31 characters, no space at the end."""
    return Text(32, pattern=r"\+?[0-9][0-9 \-]{4,29}[0-9\-]", pattern_error="Not a phone number.", **kw)


def integer(*, minimum: int = 0, maximum: int = MAX_INT64, strict: bool = True, **kw) -> fields.Integer:
    """A whole number within 64 bits (strict=False for query strings, which arrive as text)."""
    return fields.Integer(strict=strict, validate=validate.Range(min=minimum, max=maximum), **kw)


def money(*, minimum: int = 0, **kw) -> fields.Integer:
    """An amount in fen: a whole number (never a float that would be truncated), at most MAX_MONEY either way.

    Every amount on the wire is one of these (COD, fees, payments, remittances, corrections).
    """
    return integer(minimum=max(minimum, -MAX_MONEY), maximum=MAX_MONEY, **kw)


def check_payable(*, fees: list[dict], cod_amount: int = 0) -> None:
    """What is due at once (COD plus fees, in fen) must be one payment can carry; the error names the field.

    The fees are named when they alone are too much, else the COD amount, with the most it may be.
    """
    fees_total = sum(fee["amount"] for fee in fees)
    if fees_total > MAX_MONEY:
        raise ValidationError(f"The fees add up to {fees_total} fen; one payment carries at most {MAX_MONEY} fen.",
                              field_name="fees")
    if cod_amount + fees_total > MAX_MONEY:
        raise ValidationError(
            f"COD plus fees is {cod_amount + fees_total} fen; one payment carries at most {MAX_MONEY} fen, "
            f"so with these fees the COD amount is at most {MAX_MONEY - fees_total}.", field_name="cod_amount")


# The years a time or date may be written in (EARLIEST_TIME's up to LATEST_TIME's, excluded), as
# the spec's patterns say them: a pattern can read the year as written, not the instant in UTC.
assert EARLIEST_TIME.year % 100 == 0 and LATEST_TIME.year == EARLIEST_TIME.year + 100
_YEAR = rf"{EARLIEST_TIME.year // 100}[0-9]{{2}}"
_MONTH_DAY = "-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_DATE = _YEAR + _MONTH_DAY
# RFC 3339 as Python reads it: upper-case T and Z, no leap second; any fraction of a second.
_CLOCK = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
DATE_TIME_PATTERN = f"^{_DATE}{_CLOCK}$"
DATE_PATTERN = f"^{_DATE}$"
# Any time Python can hold (years 0001-9999), for a field that takes a clock however wrong (device_now).
ANY_DATE_TIME_PATTERN = f"^(?:[0-9]{{3}}[1-9]|[0-9]{{2}}[1-9]0|[0-9][1-9]00|[1-9]000){_MONTH_DAY}{_CLOCK}$"
_YEARS_MESSAGE = f"Must be in the years {EARLIEST_TIME.year}-{LATEST_TIME.year - 1}."


class _InYears:
    """What Time and Day share: the spec's pattern, and years EARLIEST_TIME's to LATEST_TIME's (excluded)."""

    default_error_messages = {"range": _YEARS_MESSAGE}
    _pattern: str

    def __init__(self, **kw):
        """Build the field; the spec publishes the pattern a value must match."""
        super().__init__(metadata={"pattern": self._pattern, **kw.pop("metadata", {})}, **kw)

    def _deserialize(self, value, attr, data, **kwargs):
        """Parse, then refuse years outside the range."""
        value = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_TIME.year <= value.year < LATEST_TIME.year:
            raise self.make_error("range")
        return value


class Time(_InYears, fields.AwareDateTime):
    """An input time: it carries its zone, and its year as written is EARLIEST_TIME's to LATEST_TIME's (excluded).

    Any offset is within a day, so every such time, and its local date in any zone, is far
    from the ends of what datetime can hold.
    """

    _pattern = DATE_TIME_PATTERN


class Day(_InYears, fields.Date):
    """An input date (YYYY-MM-DD), in the years EARLIEST_TIME's to LATEST_TIME's (excluded)."""

    _pattern = DATE_PATTERN


class PageQuery(Schema):
    """Cursor pagination: pass back next_cursor to get the next page."""

    cursor = text(200, required=False, load_default=None,
                  metadata={"description": "The next_cursor of the previous page (another is refused)"})
    limit = integer(minimum=1, maximum=500, strict=False, load_default=50)


EXPORT_FORMATS = ("json", "csv")


class CsvQuery(Schema):
    """A list that can also be had as CSV (server.csvout; docs/decisions.md, "CSV exports")."""

    format = fields.String(load_default="json", validate=validate.OneOf(EXPORT_FORMATS), metadata={
        "description": "json (a page), or csv: every row matching the filters from the cursor on, as a download"})


class NewestFirstQuery(PageQuery):
    """Paging newest first over an integer id: the cursor is the last id seen."""

    # The ids are 32-bit integer columns: a bigger cursor is bad input, not a database error.
    cursor = integer(minimum=1, maximum=MAX_INT32, strict=False, load_default=None)


class PageOut(Schema):
    """A page of items; next_cursor is null on the last page."""

    next_cursor = fields.String(allow_none=True)
