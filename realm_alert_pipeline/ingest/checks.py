"""Data checks behind the ingest assets' asset checks (no Dagster here: plain MongoDB reads)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pymongo.database import Database

from realm_alert_pipeline.constants import ALERT_COLLECTION, LOG_COLLECTION

STORED_LOGS_CHECK = "stored_logs_match_read"
ALERT_LOGS_CHECK = "alert_log_ids_exist"
_CHUNK = 100
_MISSING_SAMPLE = 5


@dataclass
class AlertLogsReport:
    """Whether the given alerts only name log ids that exist in `Log`."""

    alerts_checked: int = 0
    log_ids_checked: int = 0
    missing: int = 0
    missing_sample: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.missing == 0


def check_alert_log_ids(db: Database, alert_ids: Iterable[object]) -> AlertLogsReport:
    """Read the alerts in chunks and look up each one's log_ids (bounded to 50 per alert)."""
    report = AlertLogsReport()
    alert_ids = list(alert_ids)
    for offset in range(0, len(alert_ids), _CHUNK):
        chunk = alert_ids[offset : offset + _CHUNK]
        for alert in db[ALERT_COLLECTION].find({"_id": {"$in": chunk}}, {"log_ids": 1}):
            report.alerts_checked += 1
            ids = list(dict.fromkeys(alert.get("log_ids") or []))
            report.log_ids_checked += len(ids)
            found = {doc["_id"] for doc in db[LOG_COLLECTION].find({"_id": {"$in": ids}}, {"_id": 1})}
            for log_id in ids:
                if log_id not in found:
                    report.missing += 1
                    if len(report.missing_sample) < _MISSING_SAMPLE:
                        report.missing_sample.append(f"{alert['_id']}:{log_id}")
    return report
