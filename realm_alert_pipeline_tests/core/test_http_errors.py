"""Admin API error bodies are `{error, error_code?, link?}`, often without a code, and a proxy in front may answer
with HTML or nothing at all: the client must still say what went wrong, briefly, and know which failures heal
by waiting (429, 5xx) and which 401s a new token cures ("invalid session...")."""

import pytest

from realm_alert_pipeline.core.http_errors import (
    ErrorBody,
    describe_failure,
    excerpt,
    is_config_status,
    is_invalid_session,
    is_retryable_status,
    parse_error_body,
    status_phrase,
)

LINK = "https://realm.mongodb.com/groups/g/apps/a/logs?co_id=671d2e2010733ecbaa2bab8d"


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (
            401,
            '{"error":"invalid session: access token expired","error_code":"InvalidSession","link":"'
            + LINK
            + '"}',
            ErrorBody("invalid session: access token expired", "InvalidSession", LINK, "json"),
        ),
        (
            401,
            '{"error":"failed to authenticate with MongoDB Cloud API: You are not authorized for this resource."}',
            ErrorBody(
                "failed to authenticate with MongoDB Cloud API: You are not authorized for this resource.",
                None,
                None,
                "json",
            ),
        ),
        # null / empty code is "no code".
        (400, '{"error":"bad","error_code":null}', ErrorBody("bad", None, None, "json")),
        (400, '{"error":"bad","error_code":""}', ErrorBody("bad", None, None, "json")),
        # Empty body: the HTTP status text.
        (502, "", ErrorBody("Bad Gateway", None, None, "empty")),
        (503, "  \n", ErrorBody("Service Unavailable", None, None, "empty")),
        (599, "", ErrorBody("HTTP 599", None, None, "empty")),
        # Not JSON: the raw text, on one line.
        (
            503,
            "<html>\n<body>upstream\tconnect error</body></html>",
            ErrorBody("<html> <body>upstream connect error</body></html>", None, None, "text"),
        ),
        # JSON, but not the envelope.
        (500, "[1, 2]", ErrorBody("[1, 2]", None, None, "other-json")),
        (500, '{"status": "down"}', ErrorBody('{"status": "down"}', None, None, "other-json")),
        # The Atlas Administration API's spelling.
        (
            429,
            '{"detail":"Rate limit exceeded","error":429,"errorCode":"RATE_LIMITED","reason":"Too Many Requests"}',
            ErrorBody("Rate limit exceeded", "RATE_LIMITED", None, "json"),
        ),
    ],
)
def test_parse_error_body(status, text, expected):
    assert parse_error_body(status, text) == expected


def test_a_huge_non_json_body_is_cut_short():
    body = parse_error_body(503, "<html>" + "x" * 100_000 + "</html>")
    assert body.form == "text"
    assert len(body.message) <= 120
    assert body.message.endswith("…")


def test_a_huge_error_message_is_cut_short():
    body = parse_error_body(400, '{"error": "' + "y" * 10_000 + '"}')
    assert len(body.message) == 500


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (
            503,
            "<html><body>Service Unavailable</body></html>",
            "HTTP 503 Service Unavailable (non-JSON body: <html><body>Service Unavailable</body></html>)",
        ),
        (502, "", "HTTP 502 Bad Gateway (empty body)"),
        (
            404,
            '{"error":"app not found","error_code":"AppNotFound"}',
            "HTTP 404 Not Found: app not found [AppNotFound]",
        ),
        (
            401,
            '{"error":"invalid session: valid Issuer required"}',
            "HTTP 401 Unauthorized: invalid session: valid Issuer required",
        ),
        (500, "[]", "HTTP 500 Internal Server Error (JSON body without an error message: [])"),
        (599, "", "HTTP 599 (empty body)"),
    ],
)
def test_describe_failure(status, text, expected):
    assert describe_failure(status, parse_error_body(status, text)) == expected


@pytest.mark.parametrize(
    ("status", "retryable", "config"),
    [
        (429, True, False),
        (500, True, False),
        (502, True, False),
        (503, True, False),
        (504, True, False),
        (501, False, False),
        (400, False, True),
        (401, False, False),
        (403, False, True),
        (404, False, True),
        (409, False, False),
    ],
)
def test_status_classes(status, retryable, config):
    assert is_retryable_status(status) is retryable
    assert is_config_status(status) is config


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (401, '{"error":"invalid session: access token expired","error_code":"InvalidSession"}', True),
        (401, '{"error":"something else","error_code":"InvalidSession"}', True),
        # No code, but the prefix: a refresh token sent as access token; refreshing is harmless and bounded.
        (401, '{"error":"invalid session: valid Issuer required"}', True),
        (401, '{"error":"Invalid Session"}', True),
        (401, '{"error":"invalid refresh token: incorrect token type"}', False),
        (
            401,
            '{"error":"failed to authenticate with MongoDB Cloud API: You are not authorized for this resource."}',
            False,
        ),
        (401, "", False),
        (403, '{"error":"invalid session: x","error_code":"InvalidSession"}', False),
    ],
)
def test_is_invalid_session(status, text, expected):
    assert is_invalid_session(status, parse_error_body(status, text)) is expected


def test_status_phrase_and_excerpt():
    assert status_phrase(429) == "Too Many Requests"
    assert status_phrase(799) == ""
    assert excerpt("a\n\n b", 10) == "a b"
    assert excerpt("abcdefghijkl", 5) == "abcd…"
