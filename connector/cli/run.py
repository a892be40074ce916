"""``ghl-connector run RECIPE --event FILE``: run a recipe once for one trigger event."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from connector.cli.argtypes import per_app

if TYPE_CHECKING:
    from pathlib import Path

    from connector.catalog import Catalog
    from connector.documents.document import Document
    from connector.recipes.engine import RunResult
    from connector.recipes.recipe import Recipe
    from connector.runtime import Runtime

__all__ = ["add_parser", "connected", "runtimes_for"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``run``."""
    parser = sub.add_parser(
        "run",
        help="run a recipe once for one trigger event",
        description=(
            "Check the recipe, check the event against the trigger's payload schema, then run\n"
            "the steps in order. The run and each step are recorded in the run history\n"
            "(see 'ghl-connector runs'). With --dry-run nothing is sent or recorded: every\n"
            "request is printed instead (token masked), and the output schemas' examples\n"
            "stand in for the steps' results. See docs/running.md."
        ),
        epilog=(
            "examples:\n"
            "  ghl-connector run recipes/new_contact_task.yaml --event contact.json --dry-run\n"
            "  ghl-connector run recipes/new_contact_task.yaml --event contact.json \\\n"
            "      --connection main\n"
            "  ghl-connector run my.yaml --event event.json --base-url http://127.0.0.1:8800\n"
            "  ghl-connector run recipes/partner-recipes/superphone_task_to_ghl.yaml \\\n"
            "      --event task.json --base-url http://127.0.0.1:8800 \\\n"
            "      --base-url superphone=http://127.0.0.1:8900\n"
            "\nPartner apps (SuperPhone, LinkedPhone) read their API key from\n"
            "$CONNECTOR_<APP>_API_KEY, e.g. CONNECTOR_SUPERPHONE_API_KEY.\n"
            "\nExit status: 0 when the run succeeded (or its trigger options skipped the event),"
            " 1 when it failed or was dead-lettered."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", metavar="RECIPE", help="the recipe YAML file")
    parser.add_argument(
        "--event",
        required=True,
        metavar="FILE",
        help="the trigger's payload as a JSON file (e.g. a webhook body)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the requests; send and record nothing"
    )
    parser.add_argument(
        "--connection",
        metavar="NAME",
        help="run every step with this stored connection (default: each step's or the "
        "recipe's connection, else $CONNECTOR_TOKEN, else the default one)",
    )
    parser.add_argument(
        "--base-url",
        action="append",
        metavar="[APP=]URL",
        help="send GHL calls (or, as APP=URL, that app's calls) to this base URL instead, "
        "e.g. a local sandbox; repeat it for several apps",
    )
    parser.add_argument(
        "--run-id", metavar="ID", help="resume this run: steps it already completed are skipped"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the recipe and print how it went."""
    from pathlib import Path

    from connector.catalog import build_catalog
    from connector.recipes.checker import validate_file
    from connector.recipes.engine import Engine, check_event
    from connector.recipes.history import History
    from connector.store import Store

    catalog = build_catalog()
    filters = catalog.filters  # built-in filters and every plugin's
    report = validate_file(Path(args.recipe), catalog, filters=filters)
    report.raise_for_problems()
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    recipe = report.recipe
    if recipe is None:  # a report without problems always holds its recipe
        raise AssertionError("validate_file returned no recipe and no problem")
    event = _event(Path(args.event))
    runtime, runtimes = runtimes_for(args, catalog, recipe)
    store = None if args.dry_run else Store()
    try:
        if store is not None and args.run_id:
            trigger = catalog.trigger(recipe.trigger.use)
            History(store).check_same_event(args.run_id, check_event(trigger, event))
        engine = Engine(catalog, runtime, store, runtimes=runtimes)
        result = engine.run(recipe, event, run_id=args.run_id, dry_run=args.dry_run)
    finally:
        for each in {id(r): r for r in [runtime, *(runtimes or {}).values()]}.values():
            each.close()
        if store is not None:
            store.close()
    if args.json:
        json.dump(result.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(result)
    return 0 if result.ok else 1


def runtimes_for(
    args: argparse.Namespace, catalog: Catalog, recipe: Recipe
) -> tuple[Runtime, dict[str, Runtime] | None]:
    """The default runtime, and one per connection the steps name (None: all use the default).

    A dry run needs no credentials; ``--connection`` sends every step through one connection.
    """
    from connector.runtime import Runtime, Settings

    urls = per_app(args.base_url, "--base-url", catalog)
    if args.dry_run:  # the host and location the real run would use, its token left alone
        from connector.cli.call import credential_context

        hub = catalog.hub_app() if _uses_ghl(catalog, recipe) else None
        chosen = argparse.Namespace(token_env=None, connection=args.connection)
        location_id, base_url = credential_context(chosen, hub) if hub else (None, None)
        if base_url and hub is not None and hub.id not in urls:
            urls[hub.id] = base_url
        return Runtime(catalog, Settings(base_urls=urls, location_id=location_id)), None
    names = {step.connection for step in recipe.steps}
    ghl = _uses_ghl(catalog, recipe)
    if args.connection or names <= {None}:
        return connected(catalog, args.connection, urls, ghl), None
    named = {name: connected(catalog, name, urls, ghl) for name in sorted(n for n in names if n)}
    default = connected(catalog, None, urls, ghl) if None in names else next(iter(named.values()))
    return default, named


def _uses_ghl(catalog: Catalog, recipe: Recipe) -> bool:
    """True unless every step calls an API-key app (then no GHL connection is needed)."""
    apps = {catalog.action(step.use).app for step in recipe.steps}
    return not all("api_key" in catalog.app(app).auth for app in apps)


def connected(
    catalog: Catalog, connection: str | None, urls: dict[str, str], ghl: bool
) -> Runtime:
    """A runtime for ``connection``: GHL calls use it, API-key apps their own key.

    :param ghl: resolve the GHL credential (False when no step calls GHL).
    """
    from connector.auth.credentials import api_key_provider, auth_from_args
    from connector.runtime import Runtime, Settings

    chosen = argparse.Namespace(token_env=None, connection=connection)
    hub = catalog.hub_app() if ghl else None
    fallback, location_id, base_url = (
        auth_from_args(chosen, hub) if hub is not None else (None, None, None)
    )
    urls = dict(urls)
    if base_url and hub is not None and hub.id not in urls:
        urls[hub.id] = base_url
    settings = Settings(base_urls=urls, location_id=location_id)
    return Runtime(catalog, settings, auth=api_key_provider(fallback))


def _print(result: RunResult) -> None:
    from connector.auth.redaction import redact

    mode = " (dry run: nothing sent)" if result.dry_run else ""
    print(f"run {result.run_id}: {result.recipe}: {result.status}{mode}")
    for step in result.steps:
        extra = " (done earlier)" if step.replayed else ""
        tries = f", {step.attempts} attempt(s)" if step.attempts > 1 else ""
        print(f"  {step.step_id:<20} {step.action:<24} {step.status}{tries}{extra}")
        for request in step.all_requests():
            print(f"    would send {request['method']} {request['url']}")
            if "json" in request:
                for line in redact(json.dumps(request["json"], indent=2)).splitlines():
                    print(f"      {line}")
        if step.error:
            print(f"    error: {redact(step.error)}")
    if result.error and not result.ok:
        print(f"error: {redact(result.error)}", file=sys.stderr)
    elif result.error:
        print(f"note: {result.error}")


def _event(path: Path) -> Document:
    """The event file: YAML (JSON is YAML, and keeps its positions for the errors); a ``.json``
    file whose syntax YAML refuses is read as JSON, so its error is JSON's (``invalid JSON:
    ...``)."""
    from connector.documents.document import Document, load_yaml_file
    from connector.documents.payload import load_json
    from connector.errors import DocumentError

    try:
        return load_yaml_file(path)
    except DocumentError as exc:
        syntax = any(p.message.startswith("invalid YAML") for p in exc.problems)
        if not syntax or path.suffix.lower() != ".json" or not path.is_file():
            raise  # a limit YAML found (depth, size) keeps its place in the file
    return Document(load_json(path.read_bytes(), source=str(path)), str(path))

