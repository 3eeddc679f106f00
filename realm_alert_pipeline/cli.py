"""`realm-alerts`: run the emulators, the local demo, the local `dagster dev`, and check a configuration."""

from __future__ import annotations

import argparse
import sys


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realm-alerts", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    emulate = commands.add_parser("emulate", help="serve a local emulator until interrupted")
    services = emulate.add_subparsers(dest="service", required=True)
    admin = services.add_parser("admin-api", help="the App Services Admin API v3.0")
    admin.add_argument("--port", type=int, default=0)
    admin.add_argument("--logs", help="JSON array of log entries to serve (default: generated sample logs)")
    admin.add_argument("--public-key")
    admin.add_argument("--private-key")
    twilio = services.add_parser("twilio", help="Twilio's Messages API")
    twilio.add_argument("--port", type=int, default=0)

    commands.add_parser("demo", help="run the whole pipeline once on the local default and print a summary")
    commands.add_parser("dev", help="start the local stack and `dagster dev` against it")
    commands.add_parser("check-config", help="validate the environment of a real deployment")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "emulate" and args.service == "admin-api":
        from realm_alert_pipeline.local.admin_api_emulator import serve_forever

        return serve_forever(
            port=args.port, logs_file=args.logs, public_key=args.public_key, private_key=args.private_key
        )
    if args.command == "emulate" and args.service == "twilio":
        from realm_alert_pipeline.local.twilio_emulator import serve_forever

        return serve_forever(port=args.port)
    if args.command == "demo":
        from realm_alert_pipeline.local.demo import run_demo

        return run_demo()
    if args.command == "dev":
        from realm_alert_pipeline.local.stack import run_dev

        return run_dev()
    if args.command == "check-config":
        from realm_alert_pipeline.check_config import run_check_config

        return run_check_config()
    raise AssertionError(args)


if __name__ == "__main__":
    sys.exit(main())
