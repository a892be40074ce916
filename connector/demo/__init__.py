"""The demo: two-way sync between a local GHL sandbox and local partner sandboxes, end to end.

:func:`run_demo` starts the GHL sandbox and the SuperPhone and/or LinkedPhone sandboxes (seeded),
the runtime, one sync engine per shipped sync document (``recipes/sync_<partner>.yaml``) and a
webhook relay (:mod:`connector.demo.relay`) that checks every sandbox's signatures and applies
each change with the engines. It then plays the story (:mod:`connector.demo.scenario`): sample
data, a first sync, and live changes on both sides (creates, edits, tags, notes, tasks,
completions, a conflict and a delete), printing each sync decision as it happens, and ends with
a summary (:mod:`connector.demo.summary`). No credentials, no network beyond 127.0.0.1.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from connector.auth.bearer import StaticBearer
from connector.auth.credentials import api_key_provider, ghl_only
from connector.catalog import build_catalog
from connector.console.server import ConsoleServer
from connector.demo.partners import PARTNERS, PartnerApp
from connector.demo.relay import (
    WRITES,
    Applied,
    Check,
    Lane,
    Relay,
    ghl_check,
    hmac_check,
    hub_reader,
)
from connector.demo.scenario import Cast, Story
from connector.demo.summary import Health, converged, report
from connector.hookspecs import RateLimit
from connector.pack import pack_root
from connector.runtime import Runtime, Settings
from connector.sandbox.config import SandboxConfig
from connector.sandbox.server import SandboxServer
from connector.service.signatures import parse_keys
from connector.store import Store
from connector.sync.engine import SyncEngine
from connector.sync.spec import load_sync

__all__ = ["DemoOptions", "run_demo"]

MIN_SEED_CONTACTS = 6
"""GHL contacts the story needs: two twins and one to delete per partner (two partners)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Knobs of the demo: which partners, how much seed data, the limits every side keeps to,
    and where the state file goes (None: a temporary one)."""

    partners: tuple[str, ...] = ("superphone", "linkedphone")
    seed_contacts: int = 10
    partner_seed_contacts: int = 3
    ghl_limit: RateLimit = RateLimit(200, 10.0)
    partner_limit: RateLimit = RateLimit(300, 10.0)
    state: Path | None = None
    keep: bool = False
    stop: threading.Event | None = None

    def __post_init__(self) -> None:
        unknown = [p for p in self.partners if p not in PARTNERS]
        if unknown or not self.partners:
            raise ValueError(f"DemoOptions: partners {self.partners!r} [known: {sorted(PARTNERS)}]")
        if self.seed_contacts < MIN_SEED_CONTACTS:
            raise ValueError(
                f"DemoOptions: seed_contacts {self.seed_contacts!r} < {MIN_SEED_CONTACTS}"
            )


class _Progress:
    """Prints lines from any thread, and keeps every change the relay applied."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.applied: list[Applied] = []
        self._lock = threading.Lock()

    def say(self, line: str) -> None:
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def applied_one(self, done: Applied) -> None:
        with self._lock:
            self.applied.append(done)
        line = _describe(done)
        if line:
            self.say(line)


def run_demo(options: DemoOptions | None = None, out: TextIO | None = None) -> int:
    """Run the demo; returns the exit status (0 when both sides converged as the policy says,
    with no 429 answer and no failed change)."""
    options = options or DemoOptions()
    out = out or sys.stdout
    progress = _Progress(out)
    kits = [PARTNERS[p] for p in options.partners]
    with ExitStack() as stack:
        ghl = stack.enter_context(
            SandboxServer(
                SandboxConfig(
                    seed_contacts=options.seed_contacts,
                    rate_limit_requests=options.ghl_limit.requests,
                    rate_limit_seconds=options.ghl_limit.per_seconds,
                )
            )
        )
        boxes = [
            stack.enter_context(k.sandbox(options.partner_seed_contacts, options.partner_limit))
            for k in kits
        ]
        path = options.state or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "s.db"
        store = stack.enter_context(Store(path))
        console = stack.enter_context(ConsoleServer(store))
        runtime = stack.enter_context(_runtime(ghl, kits, boxes, options))
        console.state.rate_limits = runtime.rate_limits  # the headroom of the demo's calls
        casts = [
            Cast(kit, box, SyncEngine(load_sync(_sync_file(kit)), runtime, store), n)
            for n, (kit, box) in enumerate(zip(kits, boxes, strict=True))
        ]
        relay = stack.enter_context(_relay(ghl, casts, runtime, progress))
        _banner(progress.say, ghl, casts, relay, options)
        progress.say(f"  console      {console.url}  (watch the sync live)")
        progress.say("")
        story = Story(runtime, ghl, casts, relay, progress.say)
        steps = [
            ("sample data: partner contacts GHL already has", story.sample_data, False),
            ("first sync, both ways (backfill)", story.first_sync, True),
            ("new contacts on both sides", story.new_contacts, False),
            ("edits and tags on both sides", story.edits_and_tags, False),
            ("notes and tasks on both sides", story.notes_and_tasks, False),
            ("each side completes the other side's task", story.completions, False),
            ("the same contact edited on both sides at once (conflict)", story.conflict, False),
            ("a contact deleted in GHL", story.delete, False),
        ]
        for n, (title, step, webhooks_on) in enumerate(steps, 1):
            if webhooks_on:
                _webhooks_on(ghl, casts, relay)
            progress.say(f"[{n}/{len(steps)}] {title}")
            step()
        checks = [converged(runtime, cast) for cast in casts]
        ok = report(out, casts, progress.applied, checks, _health(ghl, casts, relay, story))
        if options.keep:
            _keep_serving(progress.say, console.url, options.stop or threading.Event())
    return 0 if ok else 1


def _keep_serving(say: Callable[[str], None], url: str, stop: threading.Event) -> None:
    """Keep the sandboxes and the console up until Ctrl-C (or ``stop``)."""
    say(f"still serving: the console is at {url} (Ctrl-C stops)")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        say("stopped")


def _health(ghl: SandboxServer, casts: Sequence[Cast], relay: Relay, story: Story) -> Health:
    throttled = {"ghl": int(ghl.location_stats()["throttled"])}
    deliveries = list(ghl.drain_webhooks())
    for cast in casts:
        throttled[cast.kit.app] = int(cast.sandbox.stats()["traffic"]["throttled"])
        deliveries.extend(cast.sandbox.drain_webhooks())
    dropped = sum(1 for d in deliveries if d.get("outcome") != "delivered")
    return Health(throttled, relay.rejected, dropped, story.unsettled)


def _sync_file(kit: PartnerApp) -> Path:
    return pack_root() / "recipes" / kit.sync_file


def _runtime(
    ghl: SandboxServer, kits: Sequence[PartnerApp], boxes: Sequence[Any], options: DemoOptions
) -> Runtime:
    settings = Settings(
        strict=True,
        base_urls={"ghl": ghl.base_url, **{k.app: b.base_url for k, b in zip(kits, boxes)}},  # noqa: B905  # same length
        location_id=ghl.location_id,
        rate_limits={"ghl": options.ghl_limit, **{k.app: options.partner_limit for k in kits}},
    )
    bearer = StaticBearer(ghl.private_token)
    keys = {k.app: b.api_key for k, b in zip(kits, boxes, strict=True)}
    auth = api_key_provider(ghl_only(bearer), keys=keys)
    return Runtime(build_catalog(), settings, auth=auth)


def _relay(
    ghl: SandboxServer, casts: Sequence[Cast], runtime: Runtime, progress: _Progress
) -> Relay:
    pems = [(name, pem.encode()) for name, pem in ghl.public_keys.items()]
    checks: dict[str, Check] = {"ghl": ghl_check(parse_keys(pems))}
    lanes: dict[str, list[Lane]] = {"ghl": []}
    prepare = {"ghl": hub_reader(runtime)}
    for cast in casts:
        lane = Lane(cast.engine, progress.applied_one, prepare=prepare)
        lanes["ghl"].append(lane)
        lanes[cast.kit.app] = [lane]
        checks[cast.kit.app] = hmac_check(cast.sandbox.webhook_secret, cast.kit.signature_header)
    return Relay(checks, lanes)


def _webhooks_on(ghl: SandboxServer, casts: Sequence[Cast], relay: Relay) -> None:
    ghl.set_webhook_urls([relay.url("ghl")])
    for cast in casts:
        cast.sandbox.set_webhook_urls([relay.url(cast.kit.app)])


def _banner(
    say: Callable[[str], None],
    ghl: SandboxServer,
    casts: Sequence[Cast],
    relay: Relay,
    options: DemoOptions,
) -> None:
    say("GHL Connector Pack demo: two-way sync, all local (no credentials, no network)")
    limit = options.ghl_limit
    say(
        f"  ghl          {ghl.base_url}  {options.seed_contacts} seed contacts, "
        f"limit {limit.requests} per {limit.per_seconds:g} s"
    )
    for cast in casts:
        say(
            f"  {cast.kit.app:<12} {cast.sandbox.base_url}  "
            f"{options.partner_seed_contacts} seed contacts, sync {cast.kit.sync_file} "
            f"({cast.engine.spec.name})"
        )
    partner = options.partner_limit
    say(f"  partners     limit {partner.requests} per {partner.per_seconds:g} s each")
    say(f"  relay        {relay.url('<app>')}  (GHL: Ed25519; partners: HMAC-SHA256)")
    say("")


def _describe(done: Applied) -> str:
    """One progress line for an applied change (empty for a skip nobody needs to see)."""
    partner = done.sync.removeprefix("ghl-")
    way = f"ghl -> {partner}" if done.change.side == "ghl" else f"{partner} -> ghl"
    if done.outcome is None:
        return f"      {way:<22} FAILED   {done.error}"
    outcome = done.outcome
    notable = outcome.reason.startswith(("older", "delete", "deleted", "already"))
    if outcome.action not in WRITES and not notable:
        return ""
    label = _label(done.change.record, done.change.record_id)
    when = f"{done.latency * 1000:5.0f} ms" if done.latency is not None else ""
    note = f"  [{outcome.reason}]" if notable else ""
    return f"      {way:<22} {outcome.action:<8} {done.change.object:<9} {label:<24} {when}{note}"


def _label(record: Any, record_id: str) -> str:  # noqa: ANN401  # a JSON record
    if not isinstance(record, dict):
        return record_id
    first = record.get("firstName") or record.get("first_name") or ""
    last = record.get("lastName") or record.get("last_name") or ""
    text = f"{first} {last}".strip() or record.get("title") or record.get("body") or record_id
    return str(text)[:24]
