"""Benchmark: reading answers that drift from their output schema, against answers that match.

Run: ``python bench/bench_drift.py [--contacts N] [--page 100]``

GHL's answers often differ from its spec (``null`` where the spec says boolean). A local server
on 127.0.0.1 answers ``ghl.contacts.search`` with pages of 100 contacts: on one path every
contact matches the schema, on the other one contact per page carries ``validEmail: null``
(the schema says boolean). The runtime reads N contacts from each, page by page, interleaved in
rounds so both see the same machine load, and prints both rates and their ratio (goal: the
drifting answers at no less than 0.8x the speed of the matching ones; the warning is logged
once, not per page).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.auth.credentials import StaticBearer  # noqa: E402
from connector.catalog import build_catalog  # noqa: E402
from connector.hookspecs import RateLimit  # noqa: E402
from connector.runtime import Runtime, Settings  # noqa: E402


def page(size: int, drift: bool) -> bytes:
    contacts = []
    for i in range(size):
        contacts.append({
            "id": f"c{i:08d}", "locationId": "loc", "firstName": f"First{i}",
            "lastName": f"Last{i}", "email": f"p{i}@example.com", "phone": f"+1415555{i:04d}",
            "validEmail": None if drift and i == 0 else True, "tags": ["a", "b"],
            "dateAdded": "2026-01-01T00:00:00.000Z", "dnd": False,
        })  # fmt: skip
    return json.dumps({"contacts": contacts, "total": size}).encode()


def serve(pages: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = pages[self.path.split("/")[1]]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def read(runtime: Runtime, pages: int) -> float:
    started = time.perf_counter()
    for _ in range(pages):
        runtime.call("ghl.contacts.search", {"locationId": "loc", "pageLimit": 100})
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=100)
    args = parser.parse_args()
    warnings: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    logging.getLogger("connector.runtime").addHandler(Count(logging.WARNING))
    server = serve({"valid": page(args.page, False), "drift": page(args.page, True)})
    url = f"http://127.0.0.1:{server.server_address[1]}"
    catalog = build_catalog()
    bearer = StaticBearer("bench")
    limit = {"ghl": RateLimit(10**9, 1.0)}
    runtimes = {
        name: Runtime(catalog, Settings(base_urls={"ghl": f"{url}/{name}"}, rate_limits=limit),
                      auth=lambda app, action: bearer)
        for name in ("valid", "drift")
    }  # fmt: skip
    pages = max(1, args.contacts // args.page)
    rounds = 20
    for runtime in runtimes.values():
        read(runtime, 5)  # warm up: connections, compiled validators
    spent = {"valid": 0.0, "drift": 0.0}
    for _ in range(rounds):
        for name, runtime in runtimes.items():
            spent[name] += read(runtime, pages // rounds)
    read_pages = pages // rounds * rounds
    rate = {name: read_pages * args.page / seconds for name, seconds in spent.items()}
    ratio = rate["drift"] / rate["valid"]
    print(f"contacts read per source: {read_pages * args.page:,} in pages of {args.page}")
    print(f"  matching the schema : {rate['valid']:,.0f} contacts/s ({spent['valid']:.2f} s)")
    print(f"  one drift per page  : {rate['drift']:,.0f} contacts/s ({spent['drift']:.2f} s)")
    print(f"  ratio drift/matching: {ratio:.2f}x (goal >= 0.8x)")
    print(f"  warnings logged     : {len(warnings)} (goal: 1, once per action and field)")
    for runtime in runtimes.values():
        runtime.close()
    server.shutdown()
    met = ratio >= 0.8 and len(warnings) == 1
    print("goals met" if met else "goals NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
