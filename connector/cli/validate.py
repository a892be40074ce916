"""``ghl-connector validate RECIPE...``: check recipes without running them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.catalog import Catalog
    from connector.errors import Problem
    from connector.recipes.checker import Report
    from connector.recipes.flows import Flow

__all__ = ["add_parser", "recipe_files"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``validate``."""
    parser = sub.add_parser(
        "validate",
        help="check recipes without running them",
        description=(
            "Check recipe files: YAML, the recipe format, action and trigger ids, inputs, "
            "and every {{ expression }} path against the trigger's and earlier steps' data. "
            "Every problem is listed as FILE:LINE:COL: PATH: MESSAGE [HINT]; "
            "the exit status is 1 if there is any."
        ),
        epilog="examples:\n  ghl-connector validate recipes/\n"
        "  ghl-connector validate recipes/*.yaml\n"
        "  ghl-connector validate my_recipe.yaml --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipes", nargs="+", metavar="RECIPE",
                        help="recipe YAML files, or folders of them (every *.yaml, *.yml)")
    parser.add_argument(
        "--json", action="store_true", help="print problems, warnings and scopes as JSON"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check every recipe given; print the problems (or an OK line per recipe)."""
    from connector.catalog import build_catalog
    from connector.errors import Location, Problem
    from connector.recipes.checker import Report, validate_file

    catalog = build_catalog()
    filters = catalog.filters  # built-in filters and every plugin's
    reports: list[Report] = []
    for name in args.recipes:
        files = recipe_files(Path(name))
        if not files:
            where = Location(name)
            reports.append(Report(name, (Problem(where, "no recipe (*.yaml) in this folder"),)))
        reports += [validate_file(path, catalog, filters=filters) for path in files]
    crossings = _crossings(reports, catalog)
    if args.json:
        json.dump({**_as_json(reports), "crossings": crossings}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(reports)
        for warning in crossings:
            print(f"warning: {warning}")
    return 0 if all(report.ok for report in reports) else 1


def _crossings(reports: list[Report], catalog: Catalog) -> list[str]:
    """What the recipes and sync documents checked together copy both ways (as ``serve``
    warns at start), from the files that passed."""
    from connector.recipes.flows import crossings, recipe_flows, sync_flows
    from connector.sync.spec import load_sync

    flows: list[Flow] = []
    for report in reports:
        if not report.ok or report.file is None:
            continue
        name = Path(report.file).name
        if report.recipe is not None:
            flows += recipe_flows(name, report.recipe, catalog)
        else:
            flows += sync_flows(name, load_sync(Path(report.file)))
    return crossings(flows)


def recipe_files(path: Path) -> list[Path]:
    """``path`` itself, or every recipe of the folder ``path`` (as ``serve`` reads them)."""
    from connector.service.dispatcher import RECIPE_SUFFIXES

    if not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in RECIPE_SUFFIXES and p.is_file())


def _print(reports: list[Report]) -> None:
    failed = 0
    count = 0
    for report in reports:
        for warning in report.warnings:
            print(_warning_line(warning))
        if report.ok:
            print(_ok_line(report))
        else:
            failed += 1
            count += len(report.problems)
            for problem in report.problems:
                print(problem)
            if not report.complete and not Path(report.file or "").is_dir():
                print(
                    f"note: {report.file}: fix the problems above to have ids, inputs and "
                    "expressions checked too",
                    file=sys.stderr,
                )
    if failed:
        print(f"{count} problem(s) in {failed} of {len(reports)} recipe(s)", file=sys.stderr)


def _warning_line(warning: Problem) -> str:
    text = f"{warning.location}: warning: {warning.message}"
    return f"{text} [{warning.hint}]" if warning.hint else text


def _ok_line(report: Report) -> str:
    recipe = report.recipe
    if recipe is None:  # a sync document (name + sync:), checked by its own rules
        return f"OK {report.file}: sync document; scopes: {' '.join(report.scopes) or 'none'}"
    steps = len(recipe.steps) if recipe else 0
    trigger = recipe.trigger.use if recipe else "?"
    scopes = " ".join(report.scopes) or "none"
    return f"OK {report.file}: {trigger} -> {steps} step(s); scopes: {scopes}"


def _as_json(reports: list[Report]) -> dict[str, Any]:
    scopes = sorted({scope for report in reports for scope in report.scopes})
    return {
        "ok": all(report.ok for report in reports),
        "problems": [p.as_dict() for report in reports for p in report.problems],
        "warnings": [p.as_dict() for report in reports for p in report.warnings],
        "scopes": scopes,
        "recipes": [
            {
                "file": report.file,
                "ok": report.ok,
                "complete": report.complete,
                "name": report.recipe.name if report.recipe else None,
                "scopes": list(report.scopes),
            }
            for report in reports
        ],
    }
