"""Fingerprints decide what "the same error" is: two occurrences of one App Services error (other ids,
numbers, timestamps, e-mail addresses, quoted values, stack depth) must share one alert, and different
errors must never be folded together."""

import itertools
import json
from importlib import resources

import pytest

from realm_alert_pipeline.core.fingerprint import (
    entry_fingerprint,
    error_fingerprint,
    error_source,
    normalize_error_code,
    normalize_message,
)

APP = "6512a41bd3c5e8f01b7a2e90"
SAMPLE_ERRORS = [
    entry
    for entry in json.loads(
        resources.files("realm_alert_pipeline.local").joinpath("data/sample_logs.json").read_text()
    )
    if entry.get("error")
]


def fingerprint(message: str, **overrides) -> str:
    parts = {"app_id": APP, "type": "DB_TRIGGER", "source": "orderInsertedTrigger", "error_code": None}
    parts.update(overrides)
    return error_fingerprint(message=message, **parts)


# (first occurrence, second occurrence): the same error with different variable parts.
SAME_ERROR = [
    pytest.param(
        'write to ObjectID("6757e0c2a1b2c3d4e5f60718") in table "Task" not allowed; object is outside of the'
        " current query view (ProtocolErrorCode=231)",
        'write to ObjectID("6757e0c2a1b2c3d4e5f6ffff") in table "Order" not allowed; object is outside of the'
        " current query view (ProtocolErrorCode=231)",
        id="object ids and quoted table names",
    ),
    pytest.param(
        'invalid custom auth token: token is expired by 2h13m5s (sub="ana.ramírez@ejemplo.es")',
        'invalid custom auth token: token is expired by 0h1m40s (sub="bob@example.com")',
        id="durations and e-mail addresses",
    ),
    pytest.param(
        "failed to forward 3 log(s): (Unauthorized) not authorized on appLogs",
        "failed to forward 117 log(s): (Unauthorized) not authorized on appLogs",
        id="counts",
    ),
    pytest.param(
        "sync session 3fa85f64-5717-4562-b3fc-2c963f66afa6 ended at 2026-12-09T06:15:00.003Z",
        "sync session 9c858901-8a57-4791-81fe-4c455b099bc9 ended at 2026-12-10T17:02:44Z",
        id="uuids and iso timestamps",
    ),
    pytest.param(
        "FunctionError: (DuplicateKey) E11000 duplicate key error collection: shop.invoices index:"
        ' orderNumber_1 dup key: { orderNumber: "A-102934" }',
        "FunctionError: (DuplicateKey) E11000 duplicate key error collection: shop.invoices index:"
        ' orderNumber_1 dup key: { orderNumber: "B-000017" }',
        id="double-quoted values",
    ),
    pytest.param(
        "role `readOwnOrders` cannot insert 'x'",
        "role `readAllOrders` cannot insert 'yz'",
        id="backtick and single quotes",
    ),
    pytest.param(
        "TypeError: Cannot access member 'lineItems' of undefined\n    at computeTotals (function.js:57:31)\n"
        "    at exports (function.js:201:22)",
        "TypeError: Cannot access member 'lineItems' of undefined\n    at computeTotals (function.js:60:2)",
        id="stack frames",
    ),
    pytest.param(
        "upstream said: " + "x" * 600 + " request 1",
        "upstream said: " + "x" * 600 + " request 2 and a different tail",
        id="only a prefix counts",
    ),
    pytest.param("execution time limit exceeded", "execution  time\tlimit exceeded ", id="whitespace"),
]


@pytest.mark.parametrize(("first", "second"), SAME_ERROR)
def test_occurrences_of_one_error_share_a_fingerprint(first, second):
    assert first != second
    assert fingerprint(first) == fingerprint(second)


@pytest.mark.parametrize(
    ("first", "second"),
    list(itertools.combinations([e["error"] for e in SAMPLE_ERRORS], 2)),
)
def test_different_sample_messages_do_not_match(first, second):
    assert normalize_message(first) != normalize_message(second)


def test_every_sample_error_has_its_own_fingerprint():
    fingerprints = {entry_fingerprint(entry, APP) for entry in SAMPLE_ERRORS}
    assert len(fingerprints) == len(SAMPLE_ERRORS) == 22


@pytest.mark.parametrize("entry", SAMPLE_ERRORS, ids=lambda e: f"{e['type']}-{e['_id'][-4:]}")
def test_a_reoccurrence_of_each_sample_error_matches_it(entry):
    """The same sample error again, with a new id, time and digits, keeps its fingerprint."""
    again = dict(entry, _id="6c0000000000000000000001", started="2026-12-10T00:00:00Z")
    again["error"] = entry["error"].replace("0", "7").replace("1", "9")
    assert entry_fingerprint(again, APP) == entry_fingerprint(entry, APP)


@pytest.mark.parametrize(
    "change",
    [
        {"app_id": "6512a41bd3c5e8f01b7a2e91"},
        {"type": "SCHEDULED_TRIGGER"},
        {"source": "otherTrigger"},
        {"source": None},
        {"error_code": "FunctionExecutionError"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_each_identifying_part_changes_the_fingerprint(change):
    message = "TypeError: Cannot access member 'email' of undefined"
    assert fingerprint(message, **change) != fingerprint(message)


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_absent_null_and_empty_error_codes_are_the_same(missing):
    assert normalize_error_code(missing) is None
    assert fingerprint("boom", error_code=missing) == fingerprint("boom", error_code=None)


@pytest.mark.parametrize(
    ("fields", "source"),
    [
        (
            {"event_subscription_name": "orderInsertedTrigger", "function_name": "onOrderInserted"},
            "orderInsertedTrigger",
        ),
        (
            {"log_forwarder_name": "toArchive", "event_subscription_name": "toArchive_event_subscription"},
            "toArchive",
        ),
        ({"endpoint_route": "/import/catalog", "function_name": "importCatalog"}, "/import/catalog"),
        ({"incoming_webhook_name": "stripe", "function_name": "handle"}, "stripe"),
        ({"function_name": "checkoutCart"}, "checkoutCart"),
        ({"function_name": "  "}, None),
        ({}, None),
    ],
)
def test_source_prefers_the_most_specific_name(fields, source):
    assert error_source(fields) == source


def test_fingerprint_is_stable_hex():
    value = fingerprint("execution time limit exceeded")
    assert value == fingerprint("execution time limit exceeded")
    assert len(value) == 32 and int(value, 16) >= 0


@pytest.mark.parametrize(
    ("message", "masked"),
    [
        ("id 6757e0c2a1b2c3d4e5f60718 gone", "id <id> gone"),
        ("can't read 'x' now", "can't read <q> now"),
        ("mail ana.ramírez@ejemplo.es", "mail <email>"),
        ("at 2026-12-09T06:15:00.003Z", "at <ts>"),
        ("size 301877 bytes", "size <n> bytes"),
    ],
)
def test_normalize_message_masks_variable_parts(message, masked):
    assert normalize_message(message) == masked
