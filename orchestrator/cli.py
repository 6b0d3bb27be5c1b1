"""The `moot` command: run studies, query logs, list protocols."""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.errors import MootError

app = typer.Typer(
    help="moot: societies of agents on Ray, every message logged to DuckDB.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)


def _fail(exc: MootError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _parse_option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise typer.BadParameter(f"{text!r} is not key=value; e.g. -o fanout=2")
    key, raw = text.split("=", 1)
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


@app.command()
def run(
    script: Annotated[Path | None, typer.Argument(help="A Python study script that calls launch().")] = None,
    protocol: Annotated[str, typer.Option(help="Protocol name (see `moot protocols`).")] = "gossip",
    agents: Annotated[int, typer.Option(help="Number of OpinionAgents.")] = 10_000,
    rounds: Annotated[int, typer.Option(help="Round budget.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed; same seed, same log.")] = 0,
    log: Annotated[Path, typer.Option(help="DuckDB log file.")] = Path("moot.duckdb"),
    hosts: Annotated[int | None, typer.Option(help="Host actors (default: one per CPU).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster to join: auto, ray://host:10001.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Run in-process, without Ray.")] = False,
    state_every: Annotated[
        int, typer.Option(help="Log every agent's state every N rounds (0: first, last).")
    ] = 10,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Protocol option key=value (e.g. -o fanout=2).")
    ] = None,
) -> None:
    """Run a study script, or the built-in opinion study on a protocol."""
    if script is not None:
        _run_script(script, address, local)
        return
    from agents import OpinionAgent, Population, Uniform
    from orchestrator.launcher import launch
    from protocols import get_protocol

    kwargs = dict(_parse_option(o) for o in option or [])
    if protocol == "gossip":
        kwargs.setdefault("mode", "push-pull")
        kwargs.setdefault("fanout", 2)
    try:
        cls = get_protocol(protocol)
        try:
            proto = cls(**kwargs)
        except TypeError as exc:
            raise MootError(f"Protocol {protocol!r} rejected options {kwargs}: {exc}.") from exc
        console.print(
            f"[bold]moot[/] {agents:,} OpinionAgents · {proto!r} · seed {seed} · "
            f"{'in-process' if local else address or 'local Ray'}"
        )
        result = launch(
            Population.of(OpinionAgent, agents, opinion=Uniform(0.0, 1.0)),
            proto,
            rounds=rounds,
            seed=seed,
            log=log,
            runtime="local" if local else "ray",
            hosts=hosts,
            address=address,
            state_every=state_every,
            progress=True,
        )
    except MootError as exc:
        _fail(exc)
        return
    _print_summary(result.summary())


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title="run summary", show_header=False)
    for key in (
        "agents",
        "hosts",
        "rounds",
        "messages",
        "final_spread",
        "stop_reason",
        "seconds",
        "messages_per_second",
    ):
        value = summary.get(key)
        shown = (
            f"{value:,}"
            if isinstance(value, int)
            else f"{value:.3g}"
            if isinstance(value, float)
            else str(value)
        )
        table.add_row(key.replace("_", " "), shown)
    console.print(table)
    console.print(f"log: [bold]{summary['log']}[/] (run_id {summary['run_id']})")
    run_id = summary["run_id"]
    query = f"SELECT round, mean, spread FROM consensus_by_round WHERE run_id = '{run_id}' ORDER BY round"
    console.print(f'try: moot sql {summary["log"]} "{query}"', highlight=False, soft_wrap=True)


def _run_script(script: Path, address: str | None, local: bool) -> None:
    if not script.is_file():
        err_console.print(f"[bold red]error:[/] no script at {str(script)!r}; give the path of a .py study.")
        raise typer.Exit(2)
    if address:
        os.environ["MOOT_ADDRESS"] = address
    if local:
        os.environ["MOOT_RUNTIME"] = "local"
    os.environ.setdefault("MOOT_PROGRESS", "1")
    sys.argv = [str(script)]
    sys.path.insert(0, str(script.parent.resolve()))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except MootError as exc:
        _fail(exc)


@app.command()
def sql(
    log: Annotated[Path, typer.Argument(help="A moot DuckDB log.")],
    query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    limit: Annotated[int, typer.Option(help="Rows shown in table format.")] = 50,
) -> None:
    """Query a log through a read-only, locked-down connection."""
    from orchestrator.log import query as run_query

    try:
        result = run_query(log, query)
    except MootError as exc:
        _fail(exc)
        return
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(result, sys.stdout.buffer)
    elif fmt == "json":
        typer.echo(json.dumps(result.to_pylist(), default=str))
    else:
        table = Table(*result.column_names)
        for row in result.slice(0, limit).to_pylist():
            table.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(table)
        if result.num_rows > limit:
            console.print(f"({result.num_rows:,} rows, {limit} shown; --limit or --format csv for more)")


@app.command()
def protocols() -> None:
    """List the installed protocols (entry-point group moot.protocols)."""
    from protocols import available_protocols

    for name in available_protocols():
        typer.echo(name)


if __name__ == "__main__":
    app()
