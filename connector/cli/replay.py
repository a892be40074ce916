"""``ghl-connector replay``: list dead letters, or replay them (one, by recipe, or all)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from connector.cli.argtypes import per_app

if TYPE_CHECKING:
    from connector.catalog import Catalog
    from connector.runtime import Runtime
    from connector.service.deadletters import DeadLetter, DeadLetters, Finding

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``replay``."""
    parser = sub.add_parser(
        "replay",
        help="list dead letters, or replay them (one, by recipe, or all)",
        description=(
            "Events the service gave up on (a recipe run ended dead_letter, or the event could "
            "not run) and runs of 'ghl-connector run' that ended dead_letter wait on one "
            "dead-letter list. Replayed, a service event goes back to the running service "
            "('ghl-connector serve'), which resumes the chosen dead runs (steps they completed "
            "are skipped); a run of 'ghl-connector run' is resumed here, with the recipe file "
            "as it is now. A call whose outcome is unknown (a process died during it) is "
            "looked up first, where its action declares how (e.g. the contact by e-mail): "
            "found, it is not made again; calls with no way to look keep their run dead unless "
            "the run is named with --id. Each one is reported."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector replay --list\n"
            "  ghl-connector replay --id 42                  an event (inbox id or webhookId)\n"
            "  ghl-connector replay --id 'wh-1:new_contact'  one run (its run id)\n"
            "  ghl-connector replay --recipe new_contact_task\n"
            "  ghl-connector replay --all --base-url http://127.0.0.1:8800\n"
            "\nA running 'ghl-connector serve' reloads recipe files that change (once they pass"
            "\nvalidation), so fix the recipe, then replay: the run resumes with the file as it is."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--list", action="store_true", help="list the dead letters")
    which.add_argument("--id", metavar="ID",
                       help="replay one event (inbox id or webhookId) or one run (run id)")
    which.add_argument("--recipe", metavar="NAME",
                       help="replay the dead runs of this recipe (name or file name)")
    which.add_argument("--all", action="store_true", help="replay every dead letter")
    parser.add_argument("--store", "--db", dest="db", metavar="URL|PATH",
                        help="the state: a file or postgresql://... (default: $CONNECTOR_STORE,"
                        " else $CONNECTOR_HOME/state.db)")
    parser.add_argument("--connection", metavar="NAME",
                        help="look up unknown outcomes (and resume runs of 'run') with this"
                        " connection (default: $CONNECTOR_TOKEN, else the default one)")
    parser.add_argument("--base-url", action="append", metavar="[APP=]URL",
                        help="send GHL's (or APP's) calls to this base URL, e.g. a sandbox")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List or replay; exit 1 when ``--recipe`` matched nothing or a run could not resume."""
    from connector.service.deadletters import DeadLetters
    from connector.store import Store

    with Store(args.db) as store:
        letters = DeadLetters(store)
        if args.list:
            _print_list(letters.dead(), as_json=args.json)
            return 0
        if args.id is not None:
            chosen = [letters.one(args.id)]
        elif args.recipe is not None:
            chosen = letters.of_recipe(args.recipe)
        else:
            chosen = letters.dead()
        if args.recipe is not None and not chosen:
            print(f"error: no dead run of recipe {args.recipe!r}", file=sys.stderr)
            return 1
        return _replay(args, letters, chosen)


def _replay(args: argparse.Namespace, letters: DeadLetters, chosen: list[DeadLetter]) -> int:
    """Look up unknown outcomes, then re-queue (serve) or resume here (run) what may go."""
    from connector.catalog import build_catalog
    from connector.service.deadletters import DeadLetter

    catalog = build_catalog()
    runtimes: dict[str, Runtime] = {}

    def runtime() -> Runtime:
        if "default" not in runtimes:
            runtimes["default"] = _runtime(args, catalog)
        return runtimes["default"]

    findings: list[Finding] = []
    going: list[DeadLetter] = []
    for letter in chosen:
        runs = []
        for run_id, recipe in letter.runs:
            found = letters.look_up(run_id, catalog, runtime, named=args.id == run_id)
            findings += found
            if all(f.replayable for f in found):
                runs.append((run_id, recipe))
        if runs:
            going.append(DeadLetter(letter.event, tuple(runs)))
    letters.requeue(going)
    status = 0
    resumed: list[dict[str, object]] = []
    for letter in going:
        if letter.event is None:
            for run_id, _ in letter.runs:
                outcome = _resume(args, letters, run_id, catalog)
                resumed.append(outcome)
                status = status or (0 if outcome["status"] == "succeeded" else 1)
    for each in runtimes.values():
        each.close()
    _print_replay(letters, going, findings, resumed, as_json=args.json)
    return status


def _runtime(args: argparse.Namespace, catalog: Catalog) -> Runtime:
    """The runtime lookups (and resumed runs) use: the connection given, else the default."""
    from connector.cli.run import connected

    urls = per_app(args.base_url, "--base-url", catalog)
    return connected(catalog, args.connection, urls, ghl=True)


def _resume(
    args: argparse.Namespace, letters: DeadLetters, run_id: str, catalog: Catalog
) -> dict[str, object]:
    """Resume a dead run of ``ghl-connector run`` here: its recipe file as it is now, its
    recorded event; returns what happened."""
    from pathlib import Path

    from connector.cli.run import runtimes_for
    from connector.errors import ConnectorError
    from connector.recipes.checker import validate_file
    from connector.recipes.engine import Engine

    record = letters.history.get(run_id)
    try:
        if not record.recipe_file:
            raise ConnectorError("it has no recipe file recorded")
        report = validate_file(Path(record.recipe_file), catalog, filters=catalog.filters)
        report.raise_for_problems()
        if report.recipe is None:
            raise ConnectorError(f"{record.recipe_file}: not a recipe")
        event = json.loads(record.event)
        plan = argparse.Namespace(dry_run=False, connection=args.connection,
                                  base_url=args.base_url)
        runtime, named = runtimes_for(plan, catalog, report.recipe)
        try:
            engine = Engine(catalog, runtime, letters.store, runtimes=named)
            result = engine.run(report.recipe, event, run_id=run_id)
        finally:
            for each in {id(r): r for r in [runtime, *(named or {}).values()]}.values():
                each.close()
    except (ConnectorError, json.JSONDecodeError) as exc:
        return {"run_id": run_id, "status": "not resumed", "error": str(exc)}
    return {"run_id": run_id, "status": result.status, "error": result.error}


def _print_list(letters: list[DeadLetter], *, as_json: bool) -> None:
    if as_json:
        json.dump([d.as_dict() for d in letters], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for letter in letters:
        print(_head("dead", letter))
        for run_id, recipe in letter.runs:
            print(f"  run {run_id}  {recipe}")
        if letter.event is not None and letter.event.last_error:
            print(f"  error: {letter.event.last_error}")
    noun = "dead letter" if len(letters) == 1 else "dead letters"
    print(f"{len(letters)} {noun} listed")


def _head(verb: str, letter: DeadLetter) -> str:
    event = letter.event
    if event is None:
        return f"{verb} run of `ghl-connector run` (no service event)"
    return f"{verb} {event.id} {event.webhook_id} {event.type} ({event.attempts} attempts)"


def _print_replay(
    letters: DeadLetters,
    going: list[DeadLetter],
    findings: list[Finding],
    resumed: list[dict[str, object]],
    *,
    as_json: bool,
) -> None:
    if as_json:
        data = {
            "replayed": [d.as_dict() for d in going],
            "unknown_outcomes": [f.as_dict() for f in findings],
            "resumed_here": resumed,
        }
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for finding in findings:
        where = f"run {finding.run_id} step {finding.step_id}"
        where += f"[{finding.item}]" if finding.item >= 0 else ""
        print(f"{where} ({finding.action}): outcome unknown; {finding.detail}")
    for letter in going:
        print(_head("re-queued" if letter.event else "resumed", letter))
        for run_id, recipe in letter.runs:
            print(f"  run {run_id}  {recipe}")
    for outcome in resumed:
        error = f": {outcome['error']}" if outcome.get("error") else ""
        print(f"run {outcome['run_id']}: {outcome['status']}{error}")
    _print_stale(letters, going)
    noun = "dead letter" if len(going) == 1 else "dead letters"
    print(f"{len(going)} {noun} re-queued")


def _print_stale(letters: DeadLetters, going: list[DeadLetter]) -> None:
    """Say when a re-queued run's recipe file changed after the run started: the running
    service still runs the recipe it loaded at its start."""
    import os

    for letter in going:
        if letter.event is None:
            continue
        for run_id, _ in letter.runs:
            record = letters.history.get(run_id)
            path = record.recipe_file
            if path and os.path.exists(path) and os.path.getmtime(path) > record.started_at:
                print(
                    f"note: {path} changed after run {run_id} started: the running service"
                    " replays it with the file as it is now (serve reloads changed recipes"
                    " within a second; a file that no longer passes validation is not loaded,"
                    " and serve's log says why)"
                )
