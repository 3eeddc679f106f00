"""An alert SMS must fit the segment budget Twilio bills and never be cut mid-character.

Twilio counts GSM-7 septets (extension characters take two) or UTF-16 units, switches the whole
message to UCS-2 for a single non-GSM character, and never splits an escape or surrogate pair
across segments. The rendered alert must fit `max_segments` by that count, stay within 1,600
characters, and keep what the on-call person needs first. The last test sends the texts to the
Twilio emulator and checks that its `num_segments` agrees with our count.
"""

import json
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import pytest
from bson import ObjectId

from realm_alert_pipeline.core.sms_text import (
    alert_sms_token,
    fits_sms,
    is_gsm7,
    render_alert_sms,
    replace_emoji,
    sms_segments,
    to_gsm7,
    utf16_units,
)
from realm_alert_pipeline.local.twilio_emulator import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, DEMO_FROM_NUMBER
from realm_alert_pipeline.resources.sms import SmsResource

JOY = "\U0001f61c"  # 😜, a surrogate pair in UTF-16
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, one emoji of five code points
FLAG_JP = "\U0001f1ef\U0001f1f5"  # 🇯🇵, two regional indicators


@pytest.mark.parametrize(
    ("body", "encoding", "units", "segments"),
    [
        pytest.param("a" * 160, "GSM-7", 160, 1, id="160 GSM chars: 1"),
        pytest.param("a" * 161, "GSM-7", 161, 2, id="161: 2"),
        pytest.param("a" * 306, "GSM-7", 306, 2, id="306: 2"),
        pytest.param("a" * 307, "GSM-7", 307, 3, id="307: 3"),
        pytest.param("a" * 159 + "€", "GSM-7", 161, 2, id="159 + euro (escape pair) = 161 units: 2"),
        pytest.param("é" * 70, "GSM-7", 70, 1, id="70 e-acute is GSM-7: 1"),
        pytest.param("a" * 70 + "ç", "UCS-2", 71, 2, id="70 + c-cedilla is UCS-2: 2"),
        pytest.param(JOY * 35, "UCS-2", 70, 1, id="35 emoji = 70 units: 1"),
        pytest.param(JOY * 36, "UCS-2", 72, 2, id="36 emoji: 2"),
        pytest.param(JOY + "a" * 133, "UCS-2", 135, 3, id="calculator test: emoji + 133: 3"),
        pytest.param("a" * 152 + "’", "UCS-2", 153, 3, id="Twilio example: 152 GSM + 1 Unicode: 3"),
        pytest.param("a" * 152 + "€" * 77, "GSM-7", 306, 3, id="escape pairs never split: 306 units, 3"),
        pytest.param("あ" * 66 + JOY * 34, "UCS-2", 134, 3, id="surrogate pairs never split: 134 units, 3"),
        pytest.param("€" * 80, "GSM-7", 160, 1, id="80 euro = 160 units: 1"),
        pytest.param("", "GSM-7", 0, 0, id="empty: 0"),
    ],
)
def test_sms_segments_match_twilio_counting(body, encoding, units, segments):
    assert sms_segments(body) == (encoding, units, segments)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("“quoted” and ‘single’", "\"quoted\" and 'single'", id="curly quotes"),
        pytest.param("a – b — c ‐ d − e", "a - b - c - d - e", id="dashes and minus"),
        pytest.param("wait…", "wait...", id="ellipsis"),
        pytest.param("a\u00a0b\u2009c\td", "a b c d", id="nbsp, thin space, tab"),
        pytest.param("• one • two", "- one - two", id="bullets"),
        pytest.param("ＡＢＣ１２３！", "ABC123!", id="full-width forms"),
        pytest.param("ramírez, façade, naïve, ł", "ramirez, facade, naive, l", id="accents folded"),
        pytest.param("é è ñ ü ß Ø Å", "é è ñ ü ß Ø Å", id="GSM-7 letters kept"),
        pytest.param("e\u0301", "é", id="decomposed accent composes to the GSM-7 letter"),
        pytest.param("½ ©", "1/2 (c)", id="fraction and copyright"),
        pytest.param("a\u200bb\ufeffc", "abc", id="zero-width characters dropped"),
        pytest.param("a\x00b\x1bc\x07\nd", "abc\nd", id="control characters dropped, newline kept"),
        pytest.param("注文が見つかりません", "注文が見つかりません", id="Japanese kept"),
        pytest.param("خطأ في الخادم", "خطأ في الخادم", id="Arabic kept"),
        pytest.param(f"ok {JOY}", f"ok {JOY}", id="emoji kept"),
        pytest.param("10² m³", "10² m³", id="superscripts kept (10^2 is not 102)"),
        pytest.param("{x} [y] ~ | ^ € \\", "{x} [y] ~ | ^ € \\", id="extension characters kept"),
    ],
)
def test_to_gsm7_maps_lookalikes_and_keeps_meaning(text, expected):
    assert to_gsm7(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ok 👍🏽 done", "ok ? done"),
        (f"family {FAMILY}!", "family ?!"),
        (f"flag {FLAG_JP}", "flag ?"),
        ("keycap 1\ufe0f\u20e3", "keycap 1"),
        ("heart ❤\ufe0f", "heart ?"),
        ("plain text", "plain text"),
    ],
)
def test_replace_emoji_takes_whole_sequences(text, expected):
    assert replace_emoji(text) == expected


@pytest.mark.parametrize(
    ("alert_id", "token"),
    [
        (ObjectId("6757e0c2a1b2c3d4e5a1b2c3"), "#a1b2c3"),
        ("6757E0C2A1B2C3D4E5F60718", "#f60718"),
        ("ab-12", "#ab12"),
    ],
)
def test_alert_token_is_last_six_characters_of_the_id(alert_id, token):
    assert alert_sms_token(alert_id) == token


def _longest_function_error() -> str:
    logs = json.loads(
        files("realm_alert_pipeline.local").joinpath("data/sample_logs.json").read_text("utf-8")
    )
    errors = [entry.get("error") or "" for entry in logs if entry["type"] == "FUNCTION"]
    longest = max(errors, key=len)
    assert "\n" in longest and len(longest) > 400  # the multi-line stack trace
    return longest


def _error_1718() -> str:
    unit = "Error: write conflict on shop.orders; retrying transaction 7 of 10 failed. "
    text = (unit * 30)[:1718]
    assert len(text) == 1718
    return text


MESSAGES = {
    "stack trace": _longest_function_error(),
    "emoji": f"invalid display name '{JOY}{JOY} party {FAMILY}' in users.profile {FLAG_JP}",
    "japanese": "注文 6755f0a1 の処理に失敗しました: 在庫が見つかりません (SKU-7f3a) 再試行してください",
    "curly quotes": "Cannot read property “total” of undefined — in ‘checkoutCart’… retry\u00a0later\tplease",
    "1718 chars": _error_1718(),
}


def _alert(message: str, **extra) -> dict:
    return {
        "_id": ObjectId("6757e0c2a1b2c3d4e5a1b2c3"),
        "app_id": "6512a41bd3c5e8f01b7a2e90",
        "type": "FUNCTION",
        "source": "checkoutCart",
        "error_code": "FunctionExecutionError",
        "count": 3,
        "first_seen": datetime(2026, 12, 9, 6, 15, 3, tzinfo=UTC),
        "error": message,
        **extra,
    }


@pytest.mark.parametrize("max_segments", [1, 2, 3])
@pytest.mark.parametrize("case", list(MESSAGES))
def test_rendered_alert_fits_the_segment_budget(case, max_segments):
    text = render_alert_sms(_alert(MESSAGES[case]), max_segments=max_segments)

    encoding, units, segments = sms_segments(text)
    assert 1 <= segments <= max_segments
    assert utf16_units(text) <= 1600
    text.encode("utf-8")  # a lone surrogate (half a pair) would raise here
    assert text.startswith("FUNCTION checkoutCart")  # what broke comes first
    assert text.endswith("#a1b2c3")  # the reconciliation token always survives
    assert "\n" not in text and "  " not in text and "\t" not in text  # whitespace collapsed
    assert "\u200d..." not in text and not text.split(" (")[0].endswith("\u200d")  # no half ZWJ sequence
    assert sum(1 for c in text if "\U0001f1e6" <= c <= "\U0001f1ff") % 2 == 0  # no half flag
    if case in ("stack trace", "curly quotes", "1718 chars", "emoji"):
        assert encoding == "GSM-7", "look-alikes and emoji must not push these texts into UCS-2"
    if case == "japanese":
        assert encoding == "UCS-2" and "注文" in text


@pytest.mark.parametrize("case", list(MESSAGES))
def test_more_segments_show_more_of_the_message(case):
    lengths = [len(render_alert_sms(_alert(MESSAGES[case]), max_segments=n)) for n in (1, 2, 3)]
    assert lengths == sorted(lengths)


def test_long_stack_trace_is_truncated_with_an_ellipsis_and_keeps_its_start():
    text = render_alert_sms(_alert(MESSAGES["stack trace"]), max_segments=1)
    assert "TypeError: Cannot access member 'lineItems' of undefined" in text
    assert "... (" in text
    assert sms_segments(text)[1] <= 160


def test_two_segments_show_the_full_details():
    text = render_alert_sms(_alert(MESSAGES["stack trace"]), max_segments=2)
    assert "FunctionExecutionError" in text
    assert "3x since 2026-12-09 06:15Z" in text
    assert "app 6512a41bd3c5e8f01b7a2e90" in text


def test_short_alert_is_not_truncated():
    text = render_alert_sms(_alert("execution time limit exceeded", count=1), max_segments=1)
    assert text == (
        "FUNCTION checkoutCart FunctionExecutionError: execution time limit exceeded "
        "(1x at 2026-12-09 06:15Z, app 6512a41bd3c5e8f01b7a2e90) #a1b2c3"
    )


def test_curly_quotes_become_gsm7_lookalikes():
    text = render_alert_sms(_alert(MESSAGES["curly quotes"]), max_segments=2)
    assert "Cannot read property \"total\" of undefined - in 'checkoutCart'... retry later please" in text


def test_emoji_become_question_marks_only_when_that_keeps_gsm7():
    gsm = render_alert_sms(_alert(f"bad name {JOY}"), max_segments=1)
    assert "bad name ?" in gsm and is_gsm7(gsm)
    ucs2 = render_alert_sms(_alert(f"名前 {JOY} が不正です"), max_segments=2)
    assert JOY in ucs2 and not is_gsm7(ucs2)


def test_alert_with_few_fields_still_renders():
    text = render_alert_sms({"_id": "6757e0c2a1b2c3d4e5f60718", "type": "AUTH"}, max_segments=1)
    assert text == "AUTH (1x) #f60718"


@pytest.mark.parametrize(
    ("since_last_alert", "fragment"),
    [
        ({"since_last_alert": 5}, "+5 since last alert"),
        ({"covers_since_last_alert": 7, "since_last_alert": 0}, "+7 since last alert"),
        ({"since_last_alert": timedelta(minutes=45)}, "last alert 45m ago"),
    ],
)
def test_since_last_alert_is_shown_when_there_is_room(since_last_alert, fragment):
    text = render_alert_sms(_alert("boom", **since_last_alert), max_segments=2)
    assert fragment in text


def test_zero_since_last_alert_shows_nothing():
    text = render_alert_sms(_alert("boom", since_last_alert=0, covers_since_last_alert=0), max_segments=2)
    assert "last alert" not in text


def test_never_over_1600_characters_even_with_many_segments():
    text = render_alert_sms(_alert(MESSAGES["1718 chars"]), max_segments=11)  # 11 x 153 = 1683 > 1600
    assert utf16_units(text) <= 1600
    assert len(text) > 1500


def test_names_too_long_for_the_budget_are_shortened_not_overflowed():
    alert = _alert("boom", source="x" * 300, error_code="E" * 200, app_id="日本" * 40)
    text = render_alert_sms(alert, max_segments=1)
    assert fits_sms(text, 1)
    assert text.endswith("#a1b2c3")


@pytest.mark.parametrize("max_segments", [0, -1])
def test_invalid_budget_is_rejected(max_segments):
    with pytest.raises(ValueError, match="max_segments"):
        render_alert_sms(_alert("boom"), max_segments=max_segments)


@pytest.mark.parametrize("max_segments", [1, 2, 3])
def test_emulator_counts_the_same_segments(twilio_emulator, max_segments):
    """Sent through SmsResource and the real twilio SDK, Twilio's (emulated) num_segments agrees."""
    sms = SmsResource(
        account_sid=DEMO_ACCOUNT_SID,
        auth_token=DEMO_AUTH_TOKEN,
        from_number=DEMO_FROM_NUMBER,
        recipients="+14155550100",
        api_base_url=twilio_emulator.base_url,
        timeout_s=5,
    )
    for message in MESSAGES.values():
        text = render_alert_sms(_alert(message), max_segments=max_segments)
        sent = sms.send_sms("+14155550100", text)
        assert sent.num_segments == sms_segments(text)[2]
        assert twilio_emulator.messages[-1]["body"] == text


def test_emoji_late_in_a_long_message_do_not_shrink_a_one_segment_alert():
    """The emoji decision is made on the whole message, not on what survives the cut."""
    text = render_alert_sms(_alert(MESSAGES["emoji"]), max_segments=1)
    assert "invalid display name '?? party ?' in users.profile ?" in text
    assert sms_segments(text)[:1] == ("GSM-7",)
