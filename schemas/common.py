"""Building blocks shared by every schema."""
import re
import unicodedata

import marshmallow as ma
from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.limits import EARLIEST_TIME, LATEST_TIME, MAX_INT32, MAX_INT64, MAX_MONEY

# Never meant as text: unpaired surrogates (not Unicode at all; they break every
# encoder), C0/C1 controls (NUL, ESC, ...) and the bidi overrides and isolates
# that make a name display as something else. Free text may still hold \t and \n.
_UNSAFE_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# A one-line value (a name, a code, a phone) holds no line breaks or tabs either.
_UNSAFE_IN_LINE = re.compile(r"[\t\n\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
UNSAFE_MESSAGE = "Must not contain control characters, direction overrides or unpaired surrogates."
# Characters that show nothing: Unicode's default-ignorable code points (DerivedCoreProperties.txt: zero-width
# spaces and joiners, the soft hyphen, word joiners and invisible operators, the BOM, Hangul fillers, variation
# selectors, tag characters) beside the format characters (category Cf, checked one by one), most of which they
# are. A text holding one looks like the same text without it, so two names a person cannot tell apart would be
# two names. Emoji are the exception (_in_emoji).
_DEFAULT_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff]")
_ZWJ, _VS15, _VS16, _KEYCAP = "\u200d", "\ufe0e", "\ufe0f", "\u20e3"
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
    if value.isascii():
        return False
    return any((unicodedata.category(c) == "Cf" or _DEFAULT_IGNORABLE.match(c)) and not _in_emoji(value, i)
               for i, c in enumerate(value))


def says_something(value: str) -> bool:
    """Whether a text shows anything: not only spaces and invisible characters (zero-width, soft hyphens)."""
    return any(not c.isspace() and unicodedata.category(c) != "Cf" for c in value)


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
    is stored as LF. upper=True normalises identifiers to upper case.
    """

    default_error_messages = {"unsafe": UNSAFE_MESSAGE, "blank": "Must not be blank.",
                              "line": "Must be a single line without tabs.", "invisible": INVISIBLE_MESSAGE}

    def __init__(self, max_len: int, *, min_len: int = 1, multiline: bool = False,
                 upper: bool = False, pattern: str | None = None,
                 pattern_error: str = "Not in the expected format.", **kw):
        """Build the field; extra keywords go to marshmallow's String."""
        validators = [validate.Length(min=min_len, max=max_len)]
        if pattern:
            validators.append(full_match(pattern, pattern_error))
        extra = kw.pop("validate", None)
        if extra:
            validators.append(extra)
        super().__init__(validate=validators, **kw)
        self.min_len, self.multiline, self.upper = min_len, multiline, upper

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
        # An identifier is unique as people read it: full-width and other compatibility forms
        # fold to their plain letters (ＥＩ００１ is EI001).
        return unicodedata.normalize("NFKC", value).strip().upper()


def text(max_len: int, *, required: bool = True, min_len: int = 1, **kw) -> Text:
    """A stripped, length-checked, safe string field (see Text)."""
    return Text(max_len, required=required, min_len=min_len, **kw)


def identifier(max_len: int, *, required: bool = True, **kw) -> Text:
    """An identifier (employee number, waybill, plate): trimmed and upper-cased, so unique as normalised."""
    return Text(max_len, upper=True, required=required, **kw)


def phone(**kw) -> Text:
    """A phone number: digits, spaces and dashes, an optional leading +."""
    return Text(32, pattern=r"\+?[0-9][0-9 \-]{5,30}", pattern_error="Not a phone number.", **kw)


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


class Time(fields.AwareDateTime):
    """An input time: it carries its zone and lies between EARLIEST_TIME and LATEST_TIME."""

    default_error_messages = {
        "range": f"Must be between {EARLIEST_TIME:%Y-%m-%d} and {LATEST_TIME:%Y-%m-%d} (UTC)."}

    def _deserialize(self, value, attr, data, **kwargs):
        """Parse, then refuse times outside the range (checked by year first: no UTC overflow)."""
        value = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_TIME.year - 1 <= value.year <= LATEST_TIME.year \
                or not EARLIEST_TIME <= value < LATEST_TIME:
            raise self.make_error("range")
        return value


class PageQuery(Schema):
    """Cursor pagination: pass back next_cursor to get the next page."""

    cursor = text(200, required=False, load_default=None)
    limit = integer(minimum=1, maximum=500, strict=False, load_default=50)


class NewestFirstQuery(PageQuery):
    """Paging newest first over an integer id: the cursor is the last id seen."""

    # The ids are 32-bit integer columns: a bigger cursor is bad input, not a database error.
    cursor = integer(minimum=1, maximum=MAX_INT32, strict=False, load_default=None)


class PageOut(Schema):
    """A page of items; next_cursor is null on the last page."""

    next_cursor = fields.String(allow_none=True)
