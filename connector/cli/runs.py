"""``ghl-connector runs``: list recent recipe runs, or show one step by step."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from connector.cli.argtypes import positive

if TYPE_CHECKING:
    from connector.client.transcript import HttpNote
    from connector.recipes.history import RunRecord, StepRecord

__all__ = ["add_parser"]

_STATUSES = ("running", "succeeded", "failed", "skipped", "dead_letter")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``runs`` and ``runs show``."""
    parser = sub.add_parser(
        "runs",
        help="list recent recipe runs, or show one step by step",
        description="The run history: each run's recipe, trigger, status and times, newest\n"
        "first. Secrets are never stored (inputs, outputs and events are redacted).",
        epilog="examples:\n  ghl-connector runs --status dead_letter\n"
        "  ghl-connector runs --recipe 'New contact follow-up' --limit 5 --json\n"
        "  ghl-connector runs show 3f2a...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--recipe", metavar="NAME",
                        help="only runs of this recipe (its name, or its file's name)")
    parser.add_argument("--status", choices=_STATUSES, help="only runs with this status")
    parser.add_argument(
        "--limit", type=positive, default=20, metavar="N", help="at most N runs (default 20)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(func=run_list)
    inner = parser.add_subparsers(dest="runs_command", metavar="show")
    show = inner.add_parser("show", help="one run, step by step")
    show.add_argument("id", metavar="ID", help="the run id (see 'ghl-connector runs')")
    show.add_argument("--json", action="store_true", help="print the run as JSON")
    show.set_defaults(func=run_show)


def run_list(args: argparse.Namespace) -> int:
    """Print recent runs."""
    from connector.cli.table import print_table
    from connector.recipes.history import History
    from connector.store import Store

    with Store() as store:
        runs = History(store).recent(recipe=args.recipe, status=args.status, limit=args.limit)
    if args.json:
        json.dump([r.as_dict() for r in runs], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not runs and (args.recipe or args.status):
        wanted = " and ".join(f"{flag} {value!r}" for flag, value in
                              (("--recipe", args.recipe), ("--status", args.status)) if value)
        print(f"no runs match {wanted} [`ghl-connector runs` lists the recent ones]")
        return 0
    if not runs:
        print("no runs recorded [run a recipe with `ghl-connector run RECIPE --event FILE`]")
        return 0
    print_table(
        [(r.id, _when(r.started_at), r.status, _took(r), r.recipe, r.trigger) for r in runs],
        headers=("ID", "STARTED", "STATUS", "TOOK", "RECIPE", "TRIGGER"),
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one run with its steps."""
    from connector.recipes.history import History
    from connector.store import Store

    with Store() as store:
        record = History(store).get(args.id)
    if args.json:
        json.dump(record.as_dict(steps=True), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"run {record.id}: {record.status}")
    print(f"  recipe   {record.recipe} ({record.recipe_file or 'no file'})")
    print(f"  trigger  {record.trigger}")
    print(f"  started  {_when(record.started_at)}, took {_took(record)}")
    if record.executions > 1:
        print(f"  executed {record.executions} times (resumed)")
    if record.error:
        print(f"  error    {record.error}")
    for step in record.steps:
        _print_step(step)
    return 0


def _print_step(step: StepRecord) -> None:
    name = step.step_id if step.item < 0 else f"  [{step.item}]"
    tries = f", {step.attempts} attempt(s)" if step.attempts > 1 else ""
    print(f"  {name:<20} {step.action:<24} {step.status} ({step.duration_ms:.1f} ms{tries})")
    indent = "      " if step.item >= 0 else "    "
    if step.input is not None and step.input != "null":
        print(f"{indent}input:  {_short(step.input)}")
    if step.output is not None and step.output != "null":
        cut = " (truncated)" if step.truncated else ""
        print(f"{indent}output: {_short(step.output)}{cut}")
    if step.error:
        print(f"{indent}error:  {step.error}")
    from connector.client.transcript import KEPT_FIRST

    notes, total = step.http()
    for index, note in enumerate(notes):
        label = "http:  " if index == 0 else "       "
        print(f"{indent}{label}  {exchange_line(note)}")
        if index == KEPT_FIRST - 1 and total > len(notes):
            print(f"{indent}         ... {total - len(notes)} more request(s) not kept")


def exchange_line(note: HttpNote) -> str:
    """One request as ``METHOD URL -> STATUS (outcome; attempt n, 12.3 ms)``."""
    answer = str(note.status) if note.status is not None else "no answer"
    extra = [note.outcome] if note.outcome else []
    if note.attempt > 1:
        extra.append(f"attempt {note.attempt}")
    extra.append(f"{note.elapsed_ms:.1f} ms")
    return f"{note.method} {note.url} -> {answer} ({'; '.join(extra)})"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _took(run: RunRecord) -> str:
    if run.finished_at is None:
        return "-"
    return f"{(run.finished_at - run.started_at) * 1000:.0f} ms"
