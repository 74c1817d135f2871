"""Run a stand-in server in the foreground until Ctrl-C.

    python -m etl_platform.devservers nvd --port 8900 [--synthetic-per-day N]
"""

from __future__ import annotations

import argparse
import time

from etl_platform.devservers.nvd import NvdStandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m etl_platform.devservers", description="Run a loopback stand-in server."
    )
    servers = parser.add_subparsers(dest="server", required=True)
    nvd = servers.add_parser("nvd", help="NVD CVE API 2.0 stand-in serving the sample records")
    nvd.add_argument("--host", default="127.0.0.1")
    nvd.add_argument("--port", type=int, default=8900, help="0 picks a free port (default: %(default)s)")
    nvd.add_argument(
        "--synthetic-per-day",
        type=int,
        default=0,
        metavar="N",
        help="serve N generated records for every requested day instead of the samples",
    )
    args = parser.parse_args(argv)

    with NvdStandIn(synthetic_per_day=args.synthetic_per_day, host=args.host, port=args.port) as server:
        print(f"NVD CVE API 2.0 stand-in serving at {server.url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
