"""CONTRACT STUB (to be replaced by the implementation; keep these names and signatures).

A faithful local emulator of the App Services Admin API v3.0 (specs/admin-api.md section 9):
a real HTTP server (http.server.ThreadingHTTPServer) on 127.0.0.1 in a background thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DEMO_GROUP_ID = "6512a3f4c8e1b27d9a0f4c31"
DEMO_APP_ID = "6512a41bd3c5e8f01b7a2e90"
DEMO_PUBLIC_KEY = "emulator-public-key"
DEMO_PRIVATE_KEY = "emulator-private-key"


@dataclass
class Fault:
    """One injected failure. Matches requests whose path contains `path` ("" = any);
    lets `after` matching requests through first, then fires on the next `times` matching requests.

    kind: "status"  -> answer `status` with `body` (str, sent as-is; may be HTML or "") and `headers`
                       (e.g. {"Retry-After": "1"}, {"Content-Type": "text/html"});
          "expire_session" -> expire all access tokens now, so this request gets the real
                       401 {"error":"invalid session: access token expired","error_code":"InvalidSession",...};
          "delay"   -> sleep `delay_s` then answer normally;
          "drop"    -> close the connection without any response.
    """

    kind: str
    path: str = ""
    status: int = 500
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0
    times: int = 1
    delay_s: float = 0.0


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]  # as parsed by urllib.parse.parse_qs(keep_blank_values=True)
    headers: dict[str, str]
    status: int  # what the emulator answered (0 for a dropped connection)


class AdminApiEmulator:
    """Serves login, refresh and the logs endpoint under /api/admin/v3.0 with the real quirks."""

    def __init__(
        self,
        *,
        public_key: str = DEMO_PUBLIC_KEY,
        private_key: str = DEMO_PRIVATE_KEY,
        group_id: str = DEMO_GROUP_ID,
        app_id: str = DEMO_APP_ID,
        logs: Iterable[dict] = (),
        retention: timedelta | None = timedelta(days=10),
        access_token_lifetime: timedelta = timedelta(minutes=30),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None: ...

    # lifecycle
    def start(self) -> AdminApiEmulator: ...
    def stop(self) -> None: ...
    def __enter__(self) -> AdminApiEmulator: ...
    def __exit__(self, *exc) -> None: ...
    @property
    def base_url(self) -> str:
        """e.g. "http://127.0.0.1:PORT/api/admin/v3.0" (what ADMIN_API_BASE_URL is set to)."""

    # the emulator's clock (token expiry, retention): real UTC now plus an offset tests control
    def now(self) -> datetime: ...
    def advance_clock(self, delta: timedelta) -> None: ...

    # data
    def add_logs(self, entries: Iterable[dict]) -> None:
        """Add entries while running (late arrivals); entries are kept as given (strings as the API returns)."""

    # sessions
    def expire_access_tokens(self) -> None: ...
    def revoke_refresh_tokens(self) -> None: ...

    # faults and observation
    def inject(self, fault: Fault) -> None: ...
    def clear_faults(self) -> None: ...
    @property
    def requests(self) -> list[RecordedRequest]: ...
    @property
    def login_count(self) -> int: ...
    @property
    def refresh_count(self) -> int: ...
