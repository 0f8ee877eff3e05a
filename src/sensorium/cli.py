"""`sensorium <system> <verb> ...`: the command line of every system.

Each system module adds its verbs through a `register(subparsers)` function. Problems with
the user's input surface as one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sensorium import __version__
from sensorium.common.errors import SensoriumError

logger = logging.getLogger("sensorium")


def build_parser() -> argparse.ArgumentParser:
    from sensorium.fastgen import pixelcnn_cli, wavenet_cli
    from sensorium.lorax import cli as lorax_cli
    from sensorium.phai import cli as phai_cli
    from sensorium.seqnms import cli as seqnms_cli

    parser = argparse.ArgumentParser(
        prog="sensorium", description="Published perception systems as tested, fast software."
    )
    parser.add_argument("--version", action="version", version=f"sensorium {__version__}")
    systems = parser.add_subparsers(dest="system", metavar="SYSTEM", required=True)
    wavenet_cli.register(systems)
    pixelcnn_cli.register(systems)
    seqnms_cli.register(systems)
    lorax_cli.register(systems)
    phai_cli.register(systems)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SensoriumError as exc:
        print(f"sensorium: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sensorium: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
