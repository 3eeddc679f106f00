"""`realm-alerts check-config` tells a user, item by item, what is wrong with a real deployment's environment:
each bad variable by name, whether the Admin API login, MongoDB and Twilio answer; never a secret."""

import io
import socket

from realm_alert_pipeline.check_config import run_check_config
from realm_alert_pipeline_tests.local.conftest import local_stack  # noqa: F401  (the fixture)


def _check(environ) -> tuple[int, str]:
    out = io.StringIO()
    status = run_check_config(environ, out=out)
    return status, out.getvalue()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_local_stack_passes_every_item(local_stack):  # noqa: F811
    status, output = _check(local_stack.env())
    assert status == 0, output
    for item in ("environment", "Admin API", "primary MongoDB", "secondary MongoDB", "Twilio"):
        assert f"[  ok] {item}:" in output
    assert "configuration looks usable" in output


def test_malformed_variables_are_each_named_and_nothing_is_probed(local_stack):  # noqa: F811
    environ = {**local_stack.env(), "APP_SERVICES_APP_ID": "shop-prod-qkzrv", "ALERT_SMS_TO": "4155550101"}
    del environ["MONGODB_URI"]
    status, output = _check(environ)
    assert status == 1
    assert "MONGODB_URI is not set" in output
    assert "APP_SERVICES_APP_ID='shop-prod-qkzrv'" in output
    assert "'4155550101'" in output
    assert "Admin API" not in output


def test_rejected_keys_unreachable_secondary_and_wrong_twilio_token_fail_their_items(local_stack):  # noqa: F811
    environ = {
        **local_stack.env(),
        "ATLAS_PRIVATE_KEY": "wrong-private-key-value",
        "SECONDARY_MONGODB_URI": f"mongodb://127.0.0.1:{_closed_port()}/?serverSelectionTimeoutMS=300",
        "TWILIO_AUTH_TOKEN": "wrong-twilio-token-value",
    }
    status, output = _check(environ)
    assert status == 1
    assert "[FAIL] Admin API:" in output and "ATLAS_PRIVATE_KEY" in output
    assert "[FAIL] secondary MongoDB:" in output
    assert "[FAIL] Twilio:" in output
    assert "[  ok] primary MongoDB:" in output
    for secret in ("wrong-private-key-value", "wrong-twilio-token-value", environ["ATLAS_PUBLIC_KEY"]):
        assert secret not in output


def test_without_twilio_and_secondary_those_items_are_skipped(local_stack):  # noqa: F811
    environ = {
        k: v
        for k, v in local_stack.env().items()
        if not k.startswith(("TWILIO_", "SECONDARY_", "ALERT_SMS_TO"))
    }
    status, output = _check(environ)
    assert status == 0, output
    assert "[skip] secondary MongoDB:" in output
    assert "[skip] Twilio:" in output


def test_a_well_formed_but_wrong_app_id_fails_the_admin_api_item(local_stack):  # noqa: F811
    status, output = _check({**local_stack.env(), "APP_SERVICES_APP_ID": "0123456789abcdef01234567"})
    assert status == 1
    assert "[FAIL] Admin API:" in output and "404" in output
