"""``algotrade strategy push | pull | list | templates`` (``lint`` is offline: `lint`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from algotrade_devstack.commands import context
from algotrade_devstack.commands.output import JSON_OPTION, print_json, problems, rows_table, show
from algotrade_devstack.lint import read_graph


def push(
    file: Path = typer.Argument(..., help="the graph file (JSON or YAML)", show_default=False),
    strategy_id: str = typer.Option(None, "--id", help="add a version to this strategy"),
    name: str = typer.Option(None, help="a new strategy's name (default: the file's name)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a strategy from a graph file, or (with --id) save it as that one's new version."""
    graph = read_graph(file)
    with problems(), context.client() as client:
        if strategy_id:
            saved = client.strategies.new_version(strategy_id, graph)
        else:
            saved = client.strategies.create(name or file.stem, graph)
    if as_json:
        print_json(saved)
    else:
        typer.echo(f"{saved['id']} version {saved.get('current_version', saved.get('version'))}")


def pull(
    strategy_id: str = typer.Argument(..., show_default=False),
    output: Path = typer.Option(None, "-o", "--output", help="write the graph here (JSON)"),
) -> None:
    """Print (or write) a strategy's current graph, ready for `push --id`."""
    with problems(), context.client() as client:
        strategy = client.strategies.get(strategy_id)
    text = json.dumps(strategy["graph"], indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {output}")


def list_strategies(as_json: bool = JSON_OPTION) -> None:
    """Your strategies."""
    with problems(), context.client() as client:
        rows = client.strategies.list()
    show(rows, as_json, lambda r: rows_table(r, ("id", "name", "current_version", "updated_at")))


def templates(as_json: bool = JSON_OPTION) -> None:
    """The templates a strategy can start from."""
    with problems(), context.client() as client:
        rows = client.strategies.templates()
    show(rows, as_json, lambda r: rows_table(r, ("id", "name", "description")))
