"""Is a failed SMS send safe to repeat? Twilio's create() is not idempotent (specs/twilio.md 6.3).

- "transient": Twilio did not process the request (HTTP 429 with any code, e.g. 20429 or 21611
  "SMS queue is full", connection refused, DNS failure, connect timeout, TLS handshake): back off
  and send again. TwilioRestException keeps no response headers, so Retry-After is not available:
  use backoff.
- "ambiguous": the request may have been processed (any 5xx, a read timeout, the connection dropped
  or reset after the body was sent, a truncated response, anything unrecognised): reconcile against
  the Messages list before sending again, or the recipient may be texted twice.
- "permanent": Twilio refused it (any other 4xx: 21211 bad number, 21610 opted out, 21614 not a
  mobile, 20003 bad credentials, ...) or our own configuration is wrong: record it, do not retry.

Twilio advises deciding by HTTP status class rather than by error code, as codes change over time.
"""

from __future__ import annotations

from typing import Literal

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

SendErrorKind = Literal["permanent", "transient", "ambiguous"]
PERMANENT: SendErrorKind = "permanent"
TRANSIENT: SendErrorKind = "transient"
AMBIGUOUS: SendErrorKind = "ambiguous"

try:  # twilio >= 9.10: RFC-9457 problem bodies raise this class, not a TwilioRestException
    from twilio.base.exceptions import TwilioServiceException
except ImportError:  # pragma: no cover - older SDKs
    TwilioServiceException = None  # type: ignore[assignment,misc]


def classify_send_error(exc: BaseException) -> SendErrorKind:
    """ "permanent", "transient" or "ambiguous" for an exception raised by a Messages create() call."""
    status = _http_status(exc)
    if status is not None:
        return classify_http_status(status)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TRANSIENT
    if isinstance(exc, requests.exceptions.SSLError):
        return TRANSIENT  # the TLS handshake happens before any of the request is sent
    if isinstance(exc, requests.exceptions.ProxyError):
        return AMBIGUOUS  # the proxy may have forwarded the request before failing
    if isinstance(exc, requests.exceptions.ConnectionError):
        return TRANSIENT if _failed_before_sending(exc) else AMBIGUOUS
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ChunkedEncodingError):
        return AMBIGUOUS
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return AMBIGUOUS
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return PERMANENT
    if isinstance(exc, requests.exceptions.InvalidSchema | requests.exceptions.InvalidHeader):
        return PERMANENT
    if isinstance(exc, ValueError | TypeError) and not isinstance(exc, requests.RequestException):
        return PERMANENT  # configuration or programming error (e.g. SmsConfigError): retrying won't help
    return AMBIGUOUS


def classify_http_status(status: int) -> SendErrorKind:
    """429 -> transient; 5xx -> ambiguous (a POST may have been processed); other 4xx -> permanent."""
    if status == 429:
        return TRANSIENT
    if status >= 500:
        return AMBIGUOUS
    if 400 <= status < 500:
        return PERMANENT
    return AMBIGUOUS  # a 1xx/3xx answer to a create is unexpected: do not assume nothing happened


def _http_status(exc: BaseException) -> int | None:
    if isinstance(exc, TwilioRestException):
        return int(exc.status)
    if TwilioServiceException is not None and isinstance(exc, TwilioServiceException):
        return int(exc.status)
    if isinstance(exc, TwilioException) and len(exc.args) > 1:
        # "Unable to fetch page" carries the twilio.http.response.Response as args[1].
        return getattr(exc.args[1], "status_code", None)
    return None


def _failed_before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never established (refused, DNS, connect timeout).

    requests wraps these as ConnectionError(MaxRetryError(reason=NewConnectionError|...)), while a
    connection dropped after the request went out arrives as ConnectionError(ProtocolError(...)).
    """
    for cause in _causes(exc):
        if isinstance(cause, NewConnectionError | ConnectTimeoutError | ConnectionRefusedError):
            return True
    return False


def _causes(exc: BaseException):
    """The exception, its args that are exceptions, MaxRetryError reasons and __cause__/__context__."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, MaxRetryError) and current.reason is not None:
            stack.append(current.reason)
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
