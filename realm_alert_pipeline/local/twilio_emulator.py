"""CONTRACT STUB (to be replaced by the implementation; keep these names and signatures).

A faithful local emulator of Twilio's Messages API (specs/twilio.md section 9) on 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

DEMO_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEMO_AUTH_TOKEN = "emulator-auth-token"
DEMO_FROM_NUMBER = "+15005550006"


@dataclass
class TwilioFault:
    """One injected failure on POST .../Messages.json (or `path` substring), after `after` matching
    requests, for `times` requests.

    kind: "status"          -> do NOT accept; answer `status` with `body` (a 4-key JSON error built from
                               `code`/`message` when body is None; HTML for 502 when html=True) and
                               `retry_after` header if set;
          "accept_then_status" -> accept and store the message, then answer `status` (ambiguous send);
          "accept_then_drop"   -> accept and store, then close the connection without a response;
          "drop"            -> close the connection without storing anything;
          "delay"           -> sleep `delay_s`, then behave normally.
    """

    kind: str
    path: str = "/Messages.json"
    status: int = 500
    code: int | None = None
    message: str | None = None
    body: str | None = None
    html: bool = False
    retry_after: int | None = None
    after: int = 0
    times: int = 1
    delay_s: float = 0.0


class TwilioEmulator:
    """Messages create/list/fetch with Basic auth, the error catalogue and the magic test numbers."""

    def __init__(
        self,
        *,
        account_sid: str = DEMO_ACCOUNT_SID,
        auth_token: str = DEMO_AUTH_TOKEN,
        owned_numbers: tuple[str, ...] = (DEMO_FROM_NUMBER,),
        api_keys: dict[str, str] | None = None,  # SK... -> secret
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None: ...

    def start(self) -> TwilioEmulator: ...
    def stop(self) -> None: ...
    def __enter__(self) -> TwilioEmulator: ...
    def __exit__(self, *exc) -> None: ...
    @property
    def base_url(self) -> str:
        """e.g. "http://127.0.0.1:PORT" (what TWILIO_API_BASE_URL is set to)."""

    @property
    def messages(self) -> list[dict]:
        """Every accepted message, as its JSON resource (oldest first)."""

    def inject(self, fault: TwilioFault) -> None: ...
    def clear_faults(self) -> None: ...
    @property
    def post_count(self) -> int:
        """How many create requests arrived (accepted or not)."""
