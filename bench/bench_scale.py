"""Benchmark: webhook-to-action throughput of a fleet (one ``serve --broker`` and 1, 2 and 4
``worker`` processes) and of the embedded default (one ``serve``, no broker).

Each run starts fresh processes on a fresh state file against the GHL sandbox (in this
process, its limits raised so the rate limit is not what is measured), posts ``-n`` signed
ContactUpdate webhooks spread over ``--contacts`` contacts (one contact's in order, from 8
sender threads), and times from the first webhook to the last action: the recipe writes one
note per webhook, and the run ends when the sandbox counted them all. Needs Redis (and
RabbitMQ with ``--broker amqp://...``) on 127.0.0.1.

    python bench/bench_scale.py [-n 2000] [--contacts 200] [--processes 1,2,4]
                                [--broker redis://127.0.0.1:6379/15] [--postgres]

``--postgres`` runs every mode on a fresh schema of the test PostgreSQL
(``$CONNECTOR_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432/test``) instead of
an SQLite file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.sandbox.config import SandboxConfig  # noqa: E402
from connector.sandbox.server import SandboxServer  # noqa: E402
from tests.fixtures_store import postgres_schema  # noqa: E402
from tests.fleetprocs import (  # noqa: E402
    NOTE_PER_UPDATE,
    REDIS_URL,
    Fleet,
    create_contacts,
    send_updates,
)
from tests.serveproc import ServeProcess, wait_for  # noqa: E402

NOTES = "POST /contacts/{contactId}/notes"
LIMIT = ("--rate-limit", "1000000/10")


def timed(ghl: SandboxServer, url: str, contacts: list[str],
          per_contact: int) -> tuple[float, float]:
    """Post the webhooks; (seconds until all were accepted, seconds until all notes exist)."""
    base = ghl.writes(NOTES)
    total = len(contacts) * per_contact
    started = time.monotonic()
    send_updates(ghl, url, contacts, per_contact)
    posted = time.monotonic() - started
    if not wait_for(lambda: ghl.writes(NOTES) - base >= total, timeout=600, step=0.05):
        raise RuntimeError(f"only {ghl.writes(NOTES) - base} of {total} notes were written")
    return posted, time.monotonic() - started


def store_of(postgres: bool) -> AbstractContextManager[str | None]:
    """A fresh PostgreSQL schema's URL, or None (an SQLite file in the run's folder)."""
    return postgres_schema() if postgres else nullcontext()


def embedded(ghl: SandboxServer, contacts: list[str], per_contact: int,
             postgres: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, store_of(postgres) as store:
        folder = Path(tmp) / "recipes"
        folder.mkdir()
        (folder / "note.yaml").write_text(NOTE_PER_UPDATE)
        proc = ServeProcess(folder, Path(tmp) / "home", base_url=ghl.base_url,
                            token=ghl.private_token, location_id=ghl.location_id,
                            public_keys=ghl.public_keys,
                            extra=(*LIMIT, *(("--store", store) if store else ())))
        with proc:
            return timed(ghl, proc.url, contacts, per_contact)


def fleet(ghl: SandboxServer, broker: str, workers: int, contacts: list[str],
          per_contact: int, postgres: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, store_of(postgres) as store, \
            Fleet(ghl, Path(tmp), broker, workers=workers, recipes={"note": NOTE_PER_UPDATE},
                  extra=LIMIT, store=store) as running:
        return timed(ghl, running.serve.url, contacts, per_contact)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="webhooks per run (2000)")
    parser.add_argument("--contacts", type=int, default=200, help="contacts they touch (200)")
    parser.add_argument("--processes", default="1,2,4", help="worker processes per run (1,2,4)")
    parser.add_argument("--broker", default=REDIS_URL, help=f"the broker ({REDIS_URL})")
    parser.add_argument("--postgres", action="store_true",
                        help="the store on PostgreSQL (a fresh schema per run)")
    args = parser.parse_args()
    per_contact = max(1, args.n // args.contacts)
    total = per_contact * args.contacts
    rows: list[tuple[str, float, float]] = []
    with SandboxServer(SandboxConfig()) as ghl:
        ghl.set_limits(requests=10_000_000, seconds=10)
        contacts = create_contacts(ghl, args.contacts)
        posted, took = embedded(ghl, contacts, per_contact, args.postgres)
        rows.append(("embedded serve (4 worker threads)", posted, took))
        for count in (int(p) for p in args.processes.split(",")):
            posted, took = fleet(ghl, args.broker, count, contacts, per_contact, args.postgres)
            rows.append((f"fleet: {count} worker process{'es' if count > 1 else ''}"
                         " (4 threads each)", posted, took))
    base = total / rows[0][2]
    print(f"{total} webhooks over {args.contacts} contacts, one note each;"
          f" broker {args.broker.split('@')[-1]};"
          f" store {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{'mode':45} {'posted in':>10} {'all done':>9} {'events/s':>9} {'vs embedded':>12}")
    for name, posted, took in rows:
        rate = total / took
        print(f"{name:45} {posted:9.1f}s {took:8.1f}s {rate:9.0f} {rate / base:11.2f}x")


if __name__ == "__main__":
    main()
