"""SMS text: Twilio's segment counting, GSM-7 transliteration and the alert text within a segment budget.

Outside facts handled (specs/twilio.md section 5):
- One character outside the GSM-7 alphabet switches the whole message to UCS-2, which carries 70
  units in one segment (67 per part) instead of 160 (153 per part). So look-alikes (curly quotes,
  dashes, ellipsis, NBSP, tabs, bullets, full-width forms, accented Latin letters) are mapped to GSM-7
  before counting.
- GSM-7 extension characters (``^ { } \\ [ ] ~ | €`` and form feed) take two septets, and an emoji
  outside the BMP takes two UTF-16 units; Twilio never splits either pair across segments.
- Twilio rejects a body over 1,600 characters (21617); the emulator counts UTF-16 units, so we do too.

Emoji choice: `to_gsm7` keeps emoji (and any script it cannot map: Japanese, Arabic, ...), so it never
changes what a text says. `render_alert_sms` replaces emoji by "?" only when they are the last thing
keeping the alert out of GSM-7, because one emoji would cut a one-segment alert from 160 to 70
characters; "?" is what a carrier's own down-conversion shows, so the reader still sees that a
character was there. Text in other scripts is kept as it is (the alert is then UCS-2).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from realm_alert_pipeline.core.timeutil import ensure_utc, parse_api_datetime

# The reference sets of specs/twilio.md section 5 (equal to Twilio's calculator's UnicodeToGSM.ts).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = frozenset("\f^{}\\[~]|€")
GSM7_CHARS = GSM7_BASIC | GSM7_EXT

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67
MAX_BODY_CHARS = 1600  # Twilio error 21617
ELLIPSIS = "..."

# Look-alikes whose GSM-7 replacement keeps the meaning. Letters with accents and full-width forms are
# handled generically by `_fold`; this table holds what Unicode decomposition does not cover.
_LOOKALIKES: dict[str, str] = {
    # quotes and apostrophes
    "\u2018": "'", "\u2019": "'", "\u201a": ",", "\u201b": "'", "\u2032": "'", "\u2035": "'",
    "\u00b4": "'", "`": "'", "\u02b9": "'", "\u02bb": "'", "\u02bc": "'", "\u02c8": "'", "\u02ca": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"',
    "\u00bb": '"', "\u02ba": '"', "\u2039": "<", "\u203a": ">", "\u300c": '"', "\u300d": '"',
    # dashes, minus, bullets
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u2043": "-", "\u2022": "-", "\u2023": "-", "\u25aa": "-", "\u25cf": "-",
    "\u00b7": ".",
    # ellipsis and punctuation
    "\u2026": "...", "\u203c": "!!", "\u2044": "/", "\u2215": "/", "\u00f7": "/", "\u00d7": "x",
    "\u3001": ",", "\u3002": ".", "\u2024": ".",
    # arrows and comparisons that read the same in ASCII
    "\u2192": "->", "\u2190": "<-", "\u21d2": "=>", "\u2264": "<=", "\u2265": ">=", "\u2260": "!=",
    # symbols
    "\u00a9": "(c)", "\u00ae": "(R)", "\u2122": "TM",
    # Latin letters without a Unicode decomposition
    "\u0142": "l", "\u0141": "L", "\u0111": "d", "\u0110": "D", "\u0127": "h", "\u0131": "i",
    "\u0153": "oe", "\u0152": "OE",
    # whitespace: tabs, no-break and typographic spaces, line/paragraph separators
    "\t": " ", "\u00a0": " ", "\u1680": " ", "\u2000": " ", "\u2001": " ", "\u2002": " ",
    "\u2003": " ", "\u2004": " ", "\u2005": " ", "\u2006": " ", "\u2007": " ", "\u2008": " ",
    "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u205f": " ", "\u3000": " ", "\v": " ",
    "\u2028": "\n", "\u2029": "\n", "\u0085": "\n",
    # invisible: zero-width space/joiner-free marks, soft hyphen, BOM, word joiner
    "\u200b": "", "\u2060": "", "\ufeff": "", "\u00ad": "",
}  # fmt: skip

# Decomposition tags whose ASCII form would change the meaning ("10²" is not "102").
_UNSAFE_DECOMPOSITIONS = ("<super>", "<sub>")

_EMOJI = (
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, supplemental symbols, flags, ...
    "\u2600-\u27bf"  # miscellaneous symbols and dingbats
    "\u2300-\u23ff"  # technical (watch, hourglass, ...)
    "\u2b00-\u2bff"  # arrows and stars used as emoji
    "\u2190-\u21ff"
)
_EMOJI_MODIFIERS = "\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
_FLAG = "[\U0001f1e6-\U0001f1ff]{2}"  # a pair of regional indicators
_EMOJI_CLUSTER = re.compile(
    f"{_FLAG}|[{_EMOJI}][{_EMOJI_MODIFIERS}]*(?:\u200d[{_EMOJI}][{_EMOJI_MODIFIERS}]*)*"
    f"|[{_EMOJI_MODIFIERS}\u200d]+"
)
_WHITESPACE = re.compile(r"\s+")
_ZWJ = "\u200d"


def sms_segments(body: str) -> tuple[str, int, int]:
    """(encoding, units, segments) as Twilio counts them: specs/twilio.md section 5's reference counter.

    Units are septets for GSM-7 (extension characters count 2) or UTF-16 code units for UCS-2. In a
    multipart message an escape pair or a surrogate pair is never split across segments.
    """
    gsm = all(c in GSM7_CHARS for c in body)
    if gsm:
        units, single, multi = [2 if c in GSM7_EXT else 1 for c in body], GSM7_SINGLE, GSM7_MULTI
    else:
        units, single, multi = [len(c.encode("utf-16-le")) // 2 for c in body], UCS2_SINGLE, UCS2_MULTI
    total = sum(units)
    encoding = "GSM-7" if gsm else "UCS-2"
    if total <= single:
        return encoding, total, (1 if body else 0)
    segments, used = 1, 0
    for unit in units:
        if used + unit > multi:
            segments, used = segments + 1, 0
        used += unit
    return encoding, total, segments


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 basic or extension set."""
    return all(c in GSM7_CHARS for c in text)


def utf16_units(text: str) -> int:
    """Length as Twilio's 1,600-character limit counts it (an astral character counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def fits_sms(text: str, max_segments: int) -> bool:
    """True when `text` needs at most `max_segments` segments and stays within 1,600 UTF-16 units."""
    return sms_segments(text)[2] <= max_segments and utf16_units(text) <= MAX_BODY_CHARS


def to_gsm7(text: str) -> str:
    """Replace characters outside GSM-7 by GSM-7 look-alikes where that keeps the meaning.

    Curly quotes, dashes, ellipsis, bullets, NBSP and other spaces, tabs, full-width forms and accented
    Latin letters ("á" -> "a"; "é", "ñ", "ü" are GSM-7 already) are mapped. Everything else (Japanese,
    Arabic, emoji, superscripts, ...) is left alone; such a text is sent as UCS-2. Control characters
    other than line breaks are dropped.
    """
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in GSM7_CHARS:
            out.append(ch)
        elif ch in _LOOKALIKES:
            out.append(_LOOKALIKES[ch])
        elif unicodedata.combining(ch) and out and out[-1] and out[-1][-1] in GSM7_CHARS:
            continue  # an accent left on a GSM-7 letter (no precomposed GSM-7 form exists)
        elif unicodedata.category(ch) == "Cc":
            continue  # control characters (NUL, BEL, ESC, ...) mean nothing on a phone
        else:
            out.append(_fold(ch) or ch)
    return "".join(out)


def replace_emoji(text: str, replacement: str = "?") -> str:
    """Each emoji (with its skin tone, variation selector and ZWJ-joined parts) -> `replacement`."""
    return _EMOJI_CLUSTER.sub(lambda m: replacement if not _is_modifier_run(m.group()) else "", text)


def alert_sms_token(alert_id: object) -> str:
    """A short token for the alert, e.g. "#a1b2c3": the last 6 characters of its id.

    It makes each alert's text distinct, so a reconciliation that matches on the exact body cannot
    confuse two alerts of the same fingerprint.
    """
    raw = re.sub(r"[^0-9A-Za-z]", "", str(alert_id))
    return "#" + raw[-6:].lower()


def render_alert_sms(alert: Mapping, max_segments: int = 1) -> str:
    """The SMS for one Alert document, within `max_segments` segments and 1,600 characters.

    Fields read: type, source, error_code, error, count, first_seen, app_id, _id, and optionally
    covers_since_last_alert / since_last_alert (an int; 0 shows nothing). Layout, most important first:
    ``FUNCTION checkoutCart FunctionExecutionError: TypeError: Cannot access ... (3x since
    2026-12-09 06:15Z, app 6512a41b...) #a1b2c3``.
    The message is whitespace-collapsed and cut with "..." to fill what the other parts leave. When
    space is short, the details are compacted in order (shorter app id, no year, no app, shorter
    names, no date) so that the message keeps a useful length; the type and the token always stay.
    A cut never splits a character, an escape or surrogate pair, or an emoji sequence.
    """
    if max_segments < 1:
        raise ValueError(f"max_segments={max_segments} must be 1 or more")
    parts = _AlertParts.from_alert(alert)
    if not parts.is_gsm7():
        without_emoji = _AlertParts.from_alert(alert, emoji="?")
        if without_emoji.is_gsm7():
            parts = without_emoji
    return _fit(parts, max_segments)


# --- private helpers ------------------------------------------------------------------------------

_MIN_MESSAGE_CHARS = 60
_SHORT_NAME_CHARS = 24
_TINY_NAME_CHARS = 12


@dataclass(frozen=True)
class _AlertParts:
    """The alert's fields as GSM-7-normalised one-line strings, and its layouts from richest to most compact."""

    type: str
    source: str
    code: str
    count: int
    first_seen: datetime | None
    app: str
    since_last: str
    token: str
    message: str

    @classmethod
    def from_alert(cls, alert: Mapping, emoji: str | None = None) -> _AlertParts:
        def clean(value: object) -> str:
            text = to_gsm7(str(value)) if value is not None else ""
            if emoji is not None:
                text = replace_emoji(text, emoji)
            return _WHITESPACE.sub(" ", text).strip()

        count = alert.get("count")
        valid_count = isinstance(count, int | float) and not isinstance(count, bool) and count >= 1
        return cls(
            type=clean(alert.get("type")) or "ERROR",
            source=clean(alert.get("source")),
            code=clean(alert.get("error_code")),
            count=int(count) if valid_count else 1,
            first_seen=_as_datetime(alert.get("first_seen")),
            app=clean(alert.get("app_id")),
            since_last=_since_last_alert(
                alert.get("covers_since_last_alert") or alert.get("since_last_alert")
            ),
            token=alert_sms_token(alert["_id"]) if alert.get("_id") is not None else "",
            message=clean(alert.get("error")),
        )

    def is_gsm7(self) -> bool:
        fields = (self.type, self.source, self.code, self.app, self.since_last, self.token, self.message)
        return all(is_gsm7(f) for f in fields)

    def layouts(self) -> list[tuple[str, str]]:
        """(head, tail) pairs, richest first; the message goes between them."""
        app_short = f"..{self.app[-6:]}" if len(self.app) > 8 else self.app
        full_date, short_date = _dates(self.first_seen)
        short, tiny = _SHORT_NAME_CHARS, _TINY_NAME_CHARS
        return [
            self._layout(self.app, full_date, self.since_last, names=None),
            self._layout(self.app, full_date, "", names=None),
            self._layout(app_short, full_date, "", names=None),
            self._layout(app_short, short_date, "", names=None),
            self._layout("", short_date, "", names=None),
            self._layout("", short_date, "", names=short),
            self._layout("", "", "", names=short),
            self._layout("", "", "", names=tiny),
        ]

    def _layout(self, app: str, date: str, since_last: str, names: int | None) -> tuple[str, str]:
        source, code = self.source, self.code
        if names is not None:
            source, code = _shorten(source, names), _shorten(code, names)
        head = " ".join(p for p in (self.type, source, code) if p)
        if date:
            when = f"{self.count}x since {date}" if self.count > 1 else f"1x at {date}"
        else:
            when = f"{self.count}x"
        details = ", ".join(d for d in (when, since_last, f"app {app}" if app else "") if d)
        return head, f" ({details})" + (f" {self.token}" if self.token else "")


def _fit(parts: _AlertParts, max_segments: int) -> str:
    """The richest layout that leaves the message a useful length; the message cut to fill the rest."""
    layouts = parts.layouts()
    message = parts.message
    wanted = min(len(message), _MIN_MESSAGE_CHARS)
    for head, tail in layouts:
        if fits_sms(_compose(head, _cut(message, wanted), tail), max_segments):
            return _fill(head, message, tail, max_segments)
    head, tail = layouts[-1]
    if fits_sms(_compose(head, "", tail), max_segments):
        return _fill(head, message, tail, max_segments)
    # Even the bare type and token do not fit (absurd names in UCS-2): cut the whole text.
    whole = _compose(head, "", tail)
    return _largest_fitting(lambda k: _cut(whole, k), len(whole), max_segments)


def _fill(head: str, message: str, tail: str, max_segments: int) -> str:
    return _largest_fitting(lambda k: _compose(head, _cut(message, k), tail), len(message), max_segments)


def _largest_fitting(build, limit: int, max_segments: int) -> str:
    """build(k) for the largest k in 0..limit whose text fits (binary search: longer never fits better)."""
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        if fits_sms(build(mid), max_segments):
            low = mid
        else:
            high = mid - 1
    text = build(low)
    while low > 0 and not fits_sms(text, max_segments):  # guard: the cut is not strictly monotonic
        low -= 1
        text = build(low)
    return text


def _compose(head: str, message: str, tail: str) -> str:
    return f"{head}: {message}{tail}" if message else f"{head}{tail}"


def _cut(text: str, length: int) -> str:
    """The first `length` characters, including the ellipsis, when `text` is longer; never mid-cluster."""
    if length >= len(text):
        return text
    if length < len(ELLIPSIS) + 1:
        return ""
    end = _safe_boundary(text, length - len(ELLIPSIS))
    kept = text[:end].rstrip()
    return kept + ELLIPSIS if kept else ""


def _safe_boundary(text: str, end: int) -> int:
    """Move a cut position back so it does not separate a base from its combining mark, variation
    selector, skin tone or ZWJ partner, nor split a flag (a pair of regional indicators)."""
    while 0 < end < len(text) and (_joins_previous(text[end]) or text[end - 1] == _ZWJ):
        end -= 1
    indicators = 0
    i = end - 1
    while i >= 0 and "\U0001f1e6" <= text[i] <= "\U0001f1ff":
        indicators += 1
        i -= 1
    if indicators % 2 and end < len(text) and "\U0001f1e6" <= text[end] <= "\U0001f1ff":
        end -= 1
    return end


def _joins_previous(ch: str) -> bool:
    return (
        unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or ch == _ZWJ
        or "\ufe00" <= ch <= "\ufe0f"
        or "\U0001f3fb" <= ch <= "\U0001f3ff"
        or "\U000e0020" <= ch <= "\U000e007f"
    )


def _is_modifier_run(text: str) -> bool:
    return all(_joins_previous(c) for c in text)


def _fold(ch: str) -> str | None:
    """A GSM-7 spelling from Unicode's compatibility decomposition ("á" -> "a", "Ａ" -> "A",
    "½" -> "1/2"), or None when there is none that keeps the meaning."""
    if unicodedata.decomposition(ch).startswith(_UNSAFE_DECOMPOSITIONS):
        return None
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    mapped = "".join(_LOOKALIKES.get(c, c) for c in base)
    if mapped and all(c in GSM7_CHARS for c in mapped):
        return mapped
    return None


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else _cut(text, limit)


def _dates(first_seen: datetime | None) -> tuple[str, str]:
    if first_seen is None:
        return "", ""
    utc = ensure_utc(first_seen)
    return utc.strftime("%Y-%m-%d %H:%MZ"), utc.strftime("%m-%d %H:%MZ")


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return parse_api_datetime(value)
        except ValueError:
            return None
    return None


def _since_last_alert(value: object) -> str:
    """Optional context for a repeat alert: how many occurrences followed the last alert that was
    texted (ingest's `covers_since_last_alert`, else `since_last_alert`), or when it went out."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return f"+{value} since last alert" if value > 0 else ""
    if isinstance(value, timedelta):
        minutes = int(value.total_seconds() // 60)
        return f"last alert {minutes}m ago" if minutes < 120 else f"last alert {minutes // 60}h ago"
    if isinstance(value, datetime):
        return "last alert " + ensure_utc(value).strftime("%m-%d %H:%MZ")
    return ""
