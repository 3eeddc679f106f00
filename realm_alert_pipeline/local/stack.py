"""The local default: two embedded MongoDB servers, the Admin API and Twilio emulators, and `dagster dev`.

Everything listens on free ports of 127.0.0.1; data lives under `.local/` (gitignored). `env()` gives the
environment variables a real deployment would set, pointed at these local servers.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from realm_alert_pipeline.local.admin_api_emulator import (
    DEMO_APP_ID,
    DEMO_GROUP_ID,
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
    AdminApiEmulator,
)
from realm_alert_pipeline.local.mongo_server import EmbeddedMongo
from realm_alert_pipeline.local.sample_logs import SampleLogs, generate_sample_logs
from realm_alert_pipeline.local.twilio_emulator import (
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    DEMO_FROM_NUMBER,
    TwilioEmulator,
)

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LOCAL_DIR = PROJECT_ROOT / ".local"
# Valid US mobile-format numbers that the Twilio emulator accepts (none is a magic failure number).
DEMO_RECIPIENTS = ("+14155550101", "+14155550102")
# How far back the generated logs reach, and how far ahead they continue for a long `dagster dev` session.
HISTORY = timedelta(minutes=70)
FUTURE = timedelta(days=2)
STOP_GRACE_S = 20


class LocalStack:
    """Starts and stops the local servers; `env()` is what `dagster dev` and the demo run with."""

    def __init__(
        self,
        local_dir: str | Path = DEFAULT_LOCAL_DIR,
        *,
        now: datetime | None = None,
        future: timedelta = FUTURE,
        print_sms: bool = False,
    ) -> None:
        self.local_dir = Path(local_dir)
        self.now = now or datetime.now(UTC)
        self.sample = generate_sample_logs(
            self.now - HISTORY, self.now + future, group_id=DEMO_GROUP_ID, app_id=DEMO_APP_ID
        )
        self.primary = EmbeddedMongo(self.local_dir / "mongo-primary")
        self.secondary = EmbeddedMongo(self.local_dir / "mongo-secondary")
        self.admin_api = AdminApiEmulator(logs=self.sample.entries, hide_future=True)
        self.twilio = TwilioEmulator(on_message=_print_sms if print_sms else None)

    @property
    def logs(self) -> SampleLogs:
        return self.sample

    @property
    def dagster_home(self) -> Path:
        return self.local_dir / "dagster_home"

    def start(self) -> LocalStack:
        try:
            for server in (self.primary, self.secondary, self.admin_api, self.twilio):
                server.start()
            self._prepare_dagster_home()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in (self.twilio, self.admin_api, self.secondary, self.primary):
            try:
                server.stop()
            except Exception:  # stopping the rest matters more than one server's complaint
                log.exception("stopping %s failed", type(server).__name__)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The deployment's environment variables, pointed at the local servers."""
        return {
            "ATLAS_PUBLIC_KEY": DEMO_PUBLIC_KEY,
            "ATLAS_PRIVATE_KEY": DEMO_PRIVATE_KEY,
            "APP_SERVICES_GROUP_ID": DEMO_GROUP_ID,
            "APP_SERVICES_APP_ID": DEMO_APP_ID,
            "ADMIN_API_BASE_URL": self.admin_api.base_url,
            "MONGODB_URI": self.primary.uri,
            "MONGODB_DATABASE": "Logging",
            "SECONDARY_MONGODB_URI": self.secondary.uri,
            "SECONDARY_MONGODB_DATABASE": "Logging",
            "SECONDARY_MONGODB_COLLECTION": "Alert",
            "TWILIO_ACCOUNT_SID": DEMO_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEMO_AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": DEMO_FROM_NUMBER,
            "TWILIO_API_BASE_URL": self.twilio.base_url,
            "ALERT_SMS_TO": ",".join(DEMO_RECIPIENTS),
            "DAGSTER_HOME": str(self.dagster_home),
        }

    def write_env_file(self) -> Path:
        """`.local/env.sh`: export lines of env() (local demo credentials only), for the dagster CLI."""
        path = self.local_dir / "env.sh"
        lines = [f"export {name}={shlex.quote(value)}" for name, value in self.env().items()]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    def _prepare_dagster_home(self) -> None:
        """DAGSTER_HOME under .local/ with the project's dagster.yaml (SQLite storage, queued runs)."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", self.dagster_home / "dagster.yaml")


def run_dev(port: int = 3000) -> int:
    """`make dev`: the local stack plus `dagster dev` (UI and daemon) until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with LocalStack(print_sms=True) as stack:
        env = {**os.environ, **stack.env()}
        env_file = stack.write_env_file()
        print(_describe(stack, port, env_file), flush=True)
        command = [
            sys.executable, "-m", "dagster", "dev",
            "-w", str(PROJECT_ROOT / "workspace.yaml"),
            "-h", "127.0.0.1", "-p", str(port),
        ]  # fmt: skip
        # Its own process group, so one signal stops dagster dev, its webserver, daemon and code server;
        # run from DAGSTER_HOME so the project's dagster.yaml is not mistaken for the instance's.
        child = subprocess.Popen(command, env=env, cwd=stack.dagster_home, start_new_session=True)
        stopping = []

        def stop(signum, _frame) -> None:
            stopping.append(signum)
            os.killpg(child.pid, signal.SIGINT)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            code = _wait_for_stop(child, stopping)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        print("stopped dagster dev and the local stack", flush=True)
        return 0 if stopping else code


def _wait_for_stop(child: subprocess.Popen, stopping: list) -> int:
    """Wait for dagster dev; once asked to stop, escalate if it ignores SIGINT (as a child of a
    non-interactive shell's background job does) so nothing is left running against a stopped stack."""
    deadline = None
    escalations = iter((signal.SIGTERM, signal.SIGKILL))
    while True:
        try:
            return child.wait(timeout=1)  # short, so a signal handled meanwhile is noticed
        except subprocess.TimeoutExpired:
            if stopping and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                os.killpg(child.pid, next(escalations, signal.SIGKILL))
                deadline = time.monotonic() + STOP_GRACE_S


def _print_sms(message: dict) -> None:
    print(f"[twilio emulator] SMS {message['sid']} to {message['to']}: {message['body']}", flush=True)


def _describe(stack: LocalStack, port: int, env_file: Path) -> str:
    return "\n".join(
        [
            "Local stack:",
            f"  primary MongoDB    {stack.primary.uri} (data in {stack.primary.data_dir})",
            f"  secondary MongoDB  {stack.secondary.uri}",
            f"  Admin API emulator {stack.admin_api.base_url} ({len(stack.sample.entries)} generated log entries)",
            f"  Twilio emulator    {stack.twilio.base_url}",
            f"  DAGSTER_HOME       {stack.dagster_home}",
            f"  its environment    {env_file} (`source` it to run the dagster CLI against this stack)",
            f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops everything); texts are printed below as sent",
        ]
    )
