"""`make demo` on a fresh machine: the whole pipeline once on the local default, through a real Dagster
instance, texting every alerting error once; run again, it texts nobody twice."""

import io
import os
import re
from datetime import UTC, datetime, timedelta

import pytest

from realm_alert_pipeline import constants as c
from realm_alert_pipeline.core.timeutil import parse_api_datetime
from realm_alert_pipeline.core.windows import Window
from realm_alert_pipeline.local.admin_api_emulator import DEMO_APP_ID, DEMO_GROUP_ID
from realm_alert_pipeline.local.demo import replayable_late_entries, run_demo
from realm_alert_pipeline.local.sample_logs import generate_sample_logs
from realm_alert_pipeline.local.stack import HISTORY


@pytest.fixture
def restored_environ():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _demo(local_dir) -> tuple[int, str]:
    out = io.StringIO()
    status = run_demo(local_dir, out=out)
    return status, out.getvalue()


def test_the_demo_texts_each_alerting_error_once_and_copies_it(tmp_path, restored_environ):
    status, output = _demo(tmp_path)

    assert status == 0, output
    assert "  windows ingested: 6 of 6" in output
    late = re.search(r"late entries caught by the next window: (\d+) of (\d+)", output)
    assert late and late[1] == late[2] and int(late[1]) >= 1
    assert "  pipeline errors recorded: 0" in output
    dispatched = int(output.split(" dispatched")[0].rsplit("(", 1)[1])
    assert dispatched > 0
    assert f"  dispatch runs: {dispatched} (0 failed)" in output
    assert f"  secondary copies in Logging.Alert: {dispatched}" in output
    assert (
        f"SMS received by the Twilio emulator in this demo ({2 * dispatched}):" in output
    )  # two demo recipients
    assert output.count("--- to +14155550101") == output.count("--- to +14155550102") == dispatched

    bodies = [line for line in output.splitlines() if re.search(r" #[0-9a-f]{6}$", line)]
    assert len(set(bodies)) == dispatched  # one text per alert, each sent to both numbers
    assert "(30x since" in output  # the burst of 30 duplicate-key errors is one alert


def test_a_second_demo_on_the_same_data_texts_nobody_again(tmp_path, restored_environ):
    first_status, _ = _demo(tmp_path)
    second_status, output = _demo(tmp_path)

    assert (first_status, second_status) == (0, 0)
    assert "SMS received by the Twilio emulator in this demo (0):" in output
    assert "nobody is texted twice" in output
    assert f"logs in Logging.{c.LOG_COLLECTION}:" in output


@pytest.mark.parametrize("minute", range(0, 60, 3))
def test_whenever_the_demo_starts_it_replays_a_late_entry_its_next_window_can_catch(minute):
    now = datetime(2026, 12, 3, 17, minute, 30, tzinfo=UTC)
    sample = generate_sample_logs(now - HISTORY, now, group_id=DEMO_GROUP_ID, app_id=DEMO_APP_ID)
    last_closed = now.replace(minute=minute - minute % 10, second=0) - timedelta(minutes=10)
    windows = [Window(last_closed - timedelta(minutes=10 * i), last_closed - timedelta(minutes=10 * (i - 1)))
               for i in range(5, -1, -1)]  # fmt: skip

    late = replayable_late_entries(sample.late_entries, windows)

    assert late
    for entry in late:
        assert windows[0].start <= parse_api_datetime(entry["started"]) < windows[-1].start
