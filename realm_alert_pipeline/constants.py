"""Names, defaults and limits shared by the whole project."""

from datetime import timedelta

# Primary MongoDB (database "Logging" by default): the original tutorial's collection names.
DEFAULT_DATABASE = "Logging"
CONTROL_COLLECTION = "Control"
LOG_COLLECTION = "Log"
ALERT_COLLECTION = "Alert"
ERROR_COLLECTION = "Error"

# Secondary MongoDB: the audit/reporting copy of each dispatched alert.
DEFAULT_SECONDARY_DATABASE = "Logging"
DEFAULT_SECONDARY_COLLECTION = "Alert"

# Admin API facts (specs/admin-api.md).
DEFAULT_ADMIN_API_BASE_URL = "https://services.cloud.mongodb.com/api/admin/v3.0"
ACCESS_TOKEN_LIFETIME = timedelta(minutes=30)
# Refresh this long before the access token expires, so normal polling never meets the expiry.
ACCESS_TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
LOGS_PAGE_LIMIT = 100
LOG_RETENTION = timedelta(days=10)
FUNCTION_RUNTIME_LIMIT = timedelta(seconds=300)

# Ingest.
DEFAULT_WINDOW_MINUTES = 10
DEFAULT_OVERLAP_MINUTES = 10
MIN_OVERLAP_MINUTES = 5
DEFAULT_SCHEDULE_LAG_SECONDS = 60
DEFAULT_REALERT_MINUTES = 60
DEFAULT_ALERT_MAX_AGE_MINUTES = 60
ALERT_LOG_IDS_LIMIT = 50
# First partition of the log assets: any window since then can be backfilled.
DEFAULT_PARTITIONS_START = "2026-11-01-00:00"
PARTITION_KEY_FORMAT = "%Y-%m-%d-%H:%M"

# Alert states.
ALERT_PENDING = "pending"
ALERT_SUPPRESSED = "suppressed"
ALERT_DISPATCHED = "dispatched"
ALERT_FAILED = "failed"

# Dispatch.
DEFAULT_SENSOR_INTERVAL_SECONDS = 30
SENSOR_MAX_ALERTS_PER_TICK = 100
DEFAULT_SMS_MAX_SEGMENTS = 1
SMS_MAX_CHARS = 1600

# Dagster names.
INGEST_JOB = "ingest_error_logs"
DISPATCH_JOB = "dispatch_alert"
INGEST_GROUP = "app_services"
APP_TAG = "realm_alert_pipeline/app"
