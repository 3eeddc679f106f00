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
# The schedule re-requests windows of the last day left without stored logs (an Admin API outage, a
# stopped daemon), a few per tick, oldest first.
INGEST_CATCH_UP_LOOKBACK = timedelta(hours=24)
INGEST_CATCH_UP_MAX_PER_TICK = 6
# All three ingest assets run in this Dagster concurrency pool (dagster.yaml `concurrency: pools:` sets
# its limit), whichever job or backfill launched them.
INGEST_POOL = "app_services_ingest"

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
# A sensor tick stops requesting runs after this long (Dagster cancels an evaluation at 60 s).
SENSOR_TICK_BUDGET_SECONDS = 20.0
# An alert whose dispatch run was requested this long ago and is still pending is looked at again
# (and again at this interval while its run is open): re-requested with the same run_key when no run
# with it exists (a tick lost between marking and launching; the daemon launches a run_key once), or
# with the next attempt's run_key after its runs all failed.
DISPATCH_REREQUEST_AFTER = timedelta(minutes=1)
# After a dispatch attempt's runs all failed (Twilio or MongoDB down beyond every op and run retry),
# the sensor waits this long before the next attempt (the last entry repeats), and gives up after
# DISPATCH_MAX_ATTEMPTS attempts: the alert is settled "failed" and an Error names it.
DISPATCH_RETRY_BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=60),
)
DISPATCH_MAX_ATTEMPTS = 6
# A dispatch run still going after this long is failed by run monitoring (dagster.yaml), so a run whose
# worker died stops counting as open: its run retry and the sensor's next attempt take over.
DISPATCH_MAX_RUNTIME_SECONDS = 30 * 60
# How long a dispatch run holds an alert against a concurrent run texting the same recipients.
DISPATCH_LEASE = timedelta(minutes=10)
DISPATCH_SEND_ATTEMPTS = 3  # per recipient within one op attempt (429 / connect errors / unknown outcome)
DISPATCH_SEND_BACKOFF_SECONDS = 1.0
DISPATCH_SEND_BACKOFF_CAP_SECONDS = 10.0
DISPATCH_RECONCILE_RECHECK_SECONDS = 2.0  # a just-accepted message may not be listed yet
DISPATCH_OP_MAX_RETRIES = 3
DISPATCH_OP_RETRY_DELAY_SECONDS = 5.0
# Delivery states a dispatch run writes; a delivery with a `sid` is sent whatever Twilio's status says.
DELIVERY_SENDING = "sending"  # outbox: create() about to be called, outcome not known yet
DELIVERY_UNKNOWN = "unknown"  # create() failed ambiguously and the Messages list did not show it yet
DELIVERY_RETRYING = "retrying"  # not processed by Twilio (429, connection refused): safe to send again
DELIVERY_FAILED = "failed"  # refused for this recipient (21211, 21610, 21614, ...): never retried
DELIVERY_BLOCKED = "blocked"  # refused for our account or sender (20003, 21606, ...): fix config, re-run
# Twilio refusals that are about our account or sender, not the recipient: the run fails instead of
# settling the alert as "failed" for every recipient.
TWILIO_SENDER_ERROR_CODES = frozenset({20003, 20005, 20404, 21212, 21603, 21606, 21659, 21660})

# Dagster names.
INGEST_JOB = "ingest_error_logs"
DISPATCH_JOB = "dispatch_alert"
INGEST_GROUP = "app_services"
APP_TAG = "realm_alert_pipeline/app"
DISPATCH_SENSOR = "alert_dispatch_sensor"
ALERT_TAG = "realm_alert_pipeline/alert_id"
DISPATCH_ATTEMPT_TAG = "realm_alert_pipeline/dispatch_attempt"  # 1, 2, ... on each dispatch run
# On every dispatch run: dagster.yaml's tag_concurrency_limits bound how many text at once.
SMS_TAG = "realm_alert_pipeline/sms"
MAX_RUNTIME_TAG = "dagster/max_runtime"  # enforced by run monitoring (dagster.yaml)
RUN_KEY_TAG = "dagster/run_key"  # the tag Dagster puts on a run launched from a RunRequest's run_key
PARTITION_TAG = "dagster/partition"  # Dagster's tag naming a partitioned run's partition key
SCHEDULE_NAME_TAG = "dagster/schedule_name"  # on every run a schedule launched
PRIORITY_TAG = "dagster/priority"  # the QueuedRunCoordinator launches higher values first (default 0)
