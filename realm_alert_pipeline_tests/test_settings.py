"""A deployment's environment is read once, and each missing or malformed variable is named, never a secret."""

import pytest

from realm_alert_pipeline.settings import (
    PipelineSettings,
    SettingsError,
    load_deployment_settings,
    load_pipeline_settings,
)

SECRET = "s3cr3t-private-key-value"
VALID = {
    "ATLAS_PUBLIC_KEY": "abcdefgh",
    "ATLAS_PRIVATE_KEY": SECRET,
    "APP_SERVICES_GROUP_ID": "6512a3f4c8e1b27d9a0f4c31",
    "APP_SERVICES_APP_ID": "6512a41bd3c5e8f01b7a2e90",
    "MONGODB_URI": "mongodb://127.0.0.1:27017/",
}
TWILIO = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 31 + "1",
    "TWILIO_AUTH_TOKEN": "tw-auth-token-secret",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "ALERT_SMS_TO": "+14155550101,+447911123456",
}


def test_defaults_when_nothing_is_set():
    assert load_pipeline_settings({}) == PipelineSettings()


def test_tunables_are_read():
    settings = load_pipeline_settings(
        {
            "INGEST_WINDOW_MINUTES": "15",
            "REALERT_MINUTES": "30",
            "INGEST_PARTITIONS_START": "2026-12-01-00:00",
        }
    )
    assert (settings.window_minutes, settings.realert_minutes, settings.partitions_start) == (
        15,
        30,
        "2026-12-01-00:00",
    )


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"INGEST_WINDOW_MINUTES": "ten"}, "INGEST_WINDOW_MINUTES='ten' is not a whole number"),
        ({"INGEST_WINDOW_MINUTES": "7"}, "INGEST_WINDOW_MINUTES=7 does not divide an hour"),
        ({"INGEST_OVERLAP_MINUTES": "2"}, "INGEST_OVERLAP_MINUTES=2 is outside 5.."),
        ({"SMS_MAX_SEGMENTS": "0"}, "SMS_MAX_SEGMENTS=0 is outside 1..10"),
        ({"INGEST_PARTITIONS_START": "yesterday"}, "INGEST_PARTITIONS_START='yesterday'"),
    ],
)
def test_each_malformed_tunable_is_named(environ, named):
    with pytest.raises(SettingsError) as raised:
        load_pipeline_settings(environ)
    assert any(named in problem for problem in raised.value.problems), raised.value.problems


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as raised:
        load_pipeline_settings({"INGEST_WINDOW_MINUTES": "x", "REALERT_MINUTES": "-1"})
    assert len(raised.value.problems) == 2


def test_a_complete_deployment_without_optional_parts():
    deployment = load_deployment_settings(VALID)
    assert (deployment.twilio_configured, deployment.secondary_configured) == (False, False)


def test_twilio_and_secondary_are_detected():
    deployment = load_deployment_settings({**VALID, **TWILIO, "SECONDARY_MONGODB_URI": "mongodb://h/"})
    assert (deployment.twilio_configured, deployment.secondary_configured) == (True, True)


@pytest.mark.parametrize("missing", sorted(VALID))
def test_each_missing_required_variable_is_named(missing):
    environ = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(SettingsError) as raised:
        load_deployment_settings(environ)
    assert f"{missing} is not set" in raised.value.problems


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"APP_SERVICES_APP_ID": "shop-prod-qkzrv"}, "APP_SERVICES_APP_ID='shop-prod-qkzrv'"),
        ({"APP_SERVICES_GROUP_ID": "XYZ"}, "APP_SERVICES_GROUP_ID='XYZ'"),
        ({"MONGODB_URI": "localhost:27017"}, "MONGODB_URI does not start with mongodb://"),
        ({"ADMIN_API_BASE_URL": "services.cloud.mongodb.com"}, "ADMIN_API_BASE_URL="),
        ({**TWILIO, "ALERT_SMS_TO": "4155550101"}, "'4155550101'"),
        ({**TWILIO, "ALERT_SMS_TO": "+1 415 555 0101"}, "'+1 415 555 0101'"),
        ({**TWILIO, "TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
        ({**TWILIO, "TWILIO_TIMEOUT_S": "soon"}, "TWILIO_TIMEOUT_S"),
        ({"ALERT_SMS_TO": "+14155550101"}, "TWILIO_ACCOUNT_SID is not set"),
    ],
)
def test_malformed_deployment_values_are_named_and_secrets_are_not_shown(overrides, named):
    with pytest.raises(SettingsError) as raised:
        load_deployment_settings({**VALID, **overrides})
    message = str(raised.value)
    assert named in message
    assert SECRET not in message and TWILIO["TWILIO_AUTH_TOKEN"] not in message


def test_a_partitions_start_off_the_window_grid_is_named():
    with pytest.raises(SettingsError) as raised:
        load_pipeline_settings({"INGEST_WINDOW_MINUTES": "15", "INGEST_PARTITIONS_START": "2026-12-01-00:10"})
    assert "INGEST_PARTITIONS_START='2026-12-01-00:10' is not on the 15-minute window grid" in str(
        raised.value
    )


@pytest.mark.parametrize(
    "environ",
    [
        {"INGEST_WINDOW_MINUTES": "60"},
        {"INGEST_SCHEDULE_LAG_SECONDS": "3600"},
        {"ALERT_MAX_AGE_MINUTES": "20"},
    ],
)
def test_settings_that_would_suppress_fresh_errors_are_refused(environ):
    with pytest.raises(SettingsError) as raised:
        load_pipeline_settings(environ)
    assert "ALERT_MAX_AGE_MINUTES" in str(raised.value) and "never texted" in str(raised.value)
