"""Why a dispatch step failed, whether retrying can help, and a message fit for the `Error` collection.

Outside quirks handled:
- pymongo raises configuration problems as PyMongoError subclasses (ConfigurationError / InvalidURI
  for a malformed URI, InvalidName for a bad database or collection name) and some as plain
  ValueError (a port outside 0-65535): waiting does not fix them, so they are not retried, unlike
  the PyMongoErrors of an unreachable server.
- Authentication refusals (code 18, Atlas's 8000) and missing privileges (13) are configuration too.
- Messages are cut short and every known secret (URI passwords, Twilio secrets) is blanked, although
  pymongo and twilio are not known to echo them, because a failure message lands in the Dagster
  event log and in `Error`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from pymongo.errors import ConfigurationError, InvalidName, OperationFailure, PyMongoError

_MAX_MESSAGE = 300
_AUTH_CODES = frozenset({13, 18, 8000})  # Unauthorized, AuthenticationFailed, Atlas "bad auth"
_URI = re.compile(r"mongodb(?:\+srv)?://[^\s'\"]+")


class DispatchError(Exception):
    """A step could not finish. `retryable`: trying again later can help; `code` names it in `Error`."""

    def __init__(self, message: str, *, code: str, retryable: bool, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.http_status = http_status


def is_config_error(exc: BaseException) -> bool:
    """A MongoDB setting is wrong (URI, database or collection name, credentials): do not retry."""
    if isinstance(exc, ConfigurationError | InvalidName):
        return True
    if isinstance(exc, OperationFailure) and exc.code in _AUTH_CODES:
        return True
    return isinstance(exc, ValueError | TypeError)


def mongodb_failure(
    exc: BaseException, *, which: str, variables: str, secrets: Iterable[str | None]
) -> DispatchError:
    """A DispatchError for a failure of the `which` ("primary"/"secondary") MongoDB deployment: codes
    MONGODB_* for the primary, SECONDARY_MONGODB_* for the secondary."""
    text = describe(exc, secrets)
    prefix = "" if which == "primary" else f"{which.upper()}_"
    if is_config_error(exc):
        return DispatchError(
            f"{which} MongoDB settings ({variables}) are not usable: {text}",
            code=f"{prefix}MONGODB_CONFIG_INVALID",
            retryable=False,
        )
    if isinstance(exc, OperationFailure):  # the server answered, and refused (e.g. a write conflict)
        return DispatchError(
            f"{which} MongoDB refused the operation: {text}",
            code=f"{prefix}MONGODB_OPERATION_FAILED",
            retryable=True,
        )
    return DispatchError(
        f"{which} MongoDB unavailable: {text}", code=f"{prefix}MONGODB_UNAVAILABLE", retryable=True
    )


def step_failure(exc: BaseException, secrets: Iterable[str | None]) -> DispatchError:
    """Any exception a step raised, as a DispatchError: DispatchErrors unchanged, MongoDB errors of the
    primary by kind, other configuration or programming errors (ValueError, TypeError) permanent, and
    anything else retried (it may be a transient fault we do not know)."""
    if isinstance(exc, DispatchError):
        return exc
    if isinstance(exc, PyMongoError):
        return mongodb_failure(
            exc, which="primary", variables="MONGODB_URI, MONGODB_DATABASE", secrets=secrets
        )
    if is_config_error(exc):
        return DispatchError(
            f"dispatch cannot proceed (a setting or the alert is malformed): {describe(exc, secrets)}",
            code="DISPATCH_CONFIG_INVALID",
            retryable=False,
        )
    return DispatchError(
        f"unexpected dispatch failure: {describe(exc, secrets)}",
        code="DISPATCH_UNEXPECTED_ERROR",
        retryable=True,
    )


def describe(exc: BaseException, secrets: Iterable[str | None]) -> str:
    """`Type: message`, cut short, with each secret and any MongoDB URI's credentials blanked."""
    return scrub(f"{type(exc).__name__}: {exc}", secrets)[:_MAX_MESSAGE]


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in sorted(secret_forms(secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URI.sub(lambda match: _without_userinfo(match.group(0)), text)


def secret_forms(values: Iterable[str | None]) -> set[str]:
    """Each secret as given, and for URIs their password (raw and percent-decoded) and userinfo."""
    forms: set[str] = set()
    for value in values:
        if not value or not value.strip():
            continue
        value = value.strip()
        forms.add(value)
        if "://" in value:
            userinfo = _userinfo(value)
            if userinfo:
                forms.add(userinfo)
                password = userinfo.partition(":")[2]
                if password:
                    forms.update({password, unquote(password)})
    return {form for form in forms if len(form) >= 3}  # blanking "a" would shred every message


def _userinfo(uri: str) -> str:
    netloc = urlsplit(uri).netloc if "://" in uri else ""
    return netloc.rpartition("@")[0]


def _without_userinfo(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}://{authority}{slash}{tail}"
