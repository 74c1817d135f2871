"""Run a stand-in server in the foreground until Ctrl-C.

    python -m etl_platform.devservers nvd --port 8900 [--synthetic-per-day N]
    python -m etl_platform.devservers fake-store --port 8901 [--no-auth]
    python -m etl_platform.devservers ecb --port 8902
    python -m etl_platform.devservers hotmart --port 8903 [--generate N]
"""

from __future__ import annotations

import argparse
import time

from etl_platform.devservers.ecb import EcbStandIn
from etl_platform.devservers.fake_store import FakeStoreStandIn
from etl_platform.devservers.hotmart import HotmartStandIn
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
    fake_store = servers.add_parser(
        "fake-store", help="Platzi Fake Store API stand-in (login john@mail.com / changeme)"
    )
    fake_store.add_argument("--host", default="127.0.0.1")
    fake_store.add_argument("--port", type=int, default=8901, help="0 picks a free port (default: %(default)s)")
    fake_store.add_argument(
        "--no-auth", action="store_true", help="serve products and categories without a Bearer token"
    )
    fake_store.add_argument(
        "--assign-category",
        action="append",
        default=[],
        metavar="NAME=ID,ID",
        help="file recorded products under a category, e.g. Shoes=162,163 (the recording has no Shoes)",
    )
    ecb = servers.add_parser("ecb", help="ECB SDMX data API (EXR D.USD.EUR.SP00.A) + eurofxref history stand-in")
    ecb.add_argument("--host", default="127.0.0.1")
    ecb.add_argument("--port", type=int, default=8902, help="0 picks a free port (default: %(default)s)")
    hotmart = servers.add_parser("hotmart", help="Hotmart sales API stand-in (OAuth token + sales/history)")
    hotmart.add_argument("--host", default="127.0.0.1")
    hotmart.add_argument("--port", type=int, default=8903, help="0 picks a free port (default: %(default)s)")
    hotmart.add_argument("--generate", type=int, default=0, metavar="N", help="also serve N generated sales")
    args = parser.parse_args(argv)

    if args.server == "fake-store":
        server = FakeStoreStandIn(require_auth=not args.no_auth, host=args.host, port=args.port)
        for assignment in args.assign_category:
            name, _, ids = assignment.partition("=")
            server.assign_category([int(i) for i in ids.split(",") if i], name)
        banner = "Fake Store API stand-in serving at {url} (Ctrl-C to stop)"
    elif args.server == "ecb":
        server = EcbStandIn(host=args.host, port=args.port)
        banner = "ECB data API stand-in serving at {url} (history: {server.history_url}) (Ctrl-C to stop)"
    elif args.server == "hotmart":
        server = HotmartStandIn(host=args.host, port=args.port)
        if args.generate:
            server.generate_items(args.generate)
        banner = "Hotmart stand-in: SALES_API_URL={server.api_url} SALES_AUTH_URL={server.auth_url} (Ctrl-C to stop)"
    else:
        server = NvdStandIn(synthetic_per_day=args.synthetic_per_day, host=args.host, port=args.port)
        banner = "NVD CVE API 2.0 stand-in serving at {url} (Ctrl-C to stop)"

    with server:
        print(banner.format(url=server.url, server=server), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
