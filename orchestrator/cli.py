"""The `moot` command: run studies, query logs, list protocols."""

from __future__ import annotations

import json
import math
import os
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.errors import ConfigError, MootError, RunInterrupted

if TYPE_CHECKING:
    from agents import Population
    from protocols.base import MessageProtocol

app = typer.Typer(
    help="moot: societies of agents on Ray, every message logged to DuckDB.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)


def _table_console(wide: bool = False) -> Console:
    """Where a table goes: the terminal, or (piped, or --wide) a console that never cuts a cell."""
    return console if sys.stdout.isatty() and not wide else Console(width=100_000)


def _fail(exc: MootError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _interrupted(exc: RunInterrupted) -> None:
    """One line for a run stopped by Ctrl-C or SIGTERM (its log says ``interrupted``); exit 130."""
    err_console.print(str(exc), highlight=False, soft_wrap=True)
    raise typer.Exit(130)


def _parse_option(text: str, flag: str = "-o") -> tuple[str, Any]:
    if "=" not in text:
        raise typer.BadParameter(f"{text!r} is not key=value; e.g. {flag} fanout=2")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


def make_protocol(name: str, options: dict[str, Any]) -> Any:
    """Build protocol `name` from command-line options, naming any bad option and the fix."""
    import inspect

    from pydantic import ConfigDict, TypeAdapter, ValidationError

    from protocols import get_protocol

    cls = get_protocol(name)
    sig = inspect.signature(cls.__init__)
    accepted = [p for p in sig.parameters.values() if p.name != "self" and p.kind is not p.VAR_KEYWORD]
    names = sorted(p.name for p in accepted)
    module = sys.modules.get(cls.__module__)
    for key, value in list(options.items()):
        param = sig.parameters.get(key)
        if param is None or param.name == "self":
            raise ConfigError(
                f"Unknown option {key!r} for protocol {name!r}; its options are: {', '.join(names)}."
            )
        hint = param.annotation
        if isinstance(hint, str):
            try:
                hint = eval(hint, vars(module) if module else {})
            except Exception:  # a type only imported for type checkers: the protocol checks it
                continue
        if hint is inspect.Parameter.empty:
            continue
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
            options[key] = adapter.validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(
                f"Option {key}={value!r} for protocol {name!r} is not valid: {err['msg']}. "
                f"Expected {_type_name(param.annotation)}; e.g. -o {key}={_example(param.default)}."
            ) from None
        except Exception:  # a type pydantic cannot check: the protocol checks it
            continue
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"Protocol {name!r} rejected options {options}: {exc}.") from exc


def _type_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def _example(default: Any) -> str:
    import inspect

    if default is inspect.Parameter.empty or default is None:
        return "..."
    return str(default)


def _check_script_flags(ctx: typer.Context, script: Path) -> None:
    """Flags that only the built-in study uses are refused for a script, never ignored."""
    only_builtin = {
        "protocol": "--protocol",
        "agents": "--agents",
        "agent": "--agent",
        "option": "-o/--option",
        "state": "-a/--state",
        "dim": "--dim",
    }
    given = [
        flag
        for key, flag in only_builtin.items()
        if ctx.params.get(key) is not None and ctx.params.get(key) not in ((), [])
    ]
    if given:
        raise typer.BadParameter(
            f"{', '.join(given)} set the built-in study; {script} builds its own population and "
            "protocol. Set them in the script (it can read -p key=value with orchestrator.params()).",
            param_hint=given[0],
        )


@app.command()
def run(
    ctx: typer.Context,
    script: Annotated[Path | None, typer.Argument(help="A Python study script that calls launch().")] = None,
    protocol: Annotated[
        str | None, typer.Option(help="Protocol name (see `moot protocols`); default gossip.")
    ] = None,
    agents: Annotated[int | None, typer.Option(help="Number of agents (default 10,000).")] = None,
    agent: Annotated[
        str | None, typer.Option(help="Agent class by name (see `moot agents`); default: the protocol's.")
    ] = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            "-a",
            help="Agent state field=value: a number, text, uniform:LOW:HIGH, normal:MEAN:STD, "
            "choice:V1,V2[:P1,P2] (numbers or text, e.g. party=choice:A,B).",
        ),
    ] = None,
    dim: Annotated[
        int | None, typer.Option(help="Length of the agents' vector fields (vector_degroot, ...).")
    ] = None,
    rounds: Annotated[int | None, typer.Option(help="Round budget (default 100).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed; same seed, same log (default 0).")] = None,
    log: Annotated[Path | None, typer.Option(help="DuckDB log file (default moot.duckdb).")] = None,
    hosts: Annotated[int | None, typer.Option(help="Host actors (default: one per CPU).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster to join: auto, ray://host:10001.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Run in-process, without Ray.")] = False,
    state_every: Annotated[
        int | None, typer.Option(help="Log every agent's state every N rounds (0: first, last; default 10).")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Protocol option key=value (e.g. -o fanout=2).")
    ] = None,
    stop: Annotated[
        list[str] | None,
        typer.Option(
            help="Stop rule, repeatable (any fires): consensus[:TOL], consensus:FIELD:TOL, "
            "stationary[:TOL], 'METRIC<VALUE' (also <=, >, >=)."
        ),
    ] = None,
    messages: Annotated[
        str | None,
        typer.Option(help="Which messages to log: all, none, aggregate, sample:RATE, every:K (default all)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A parameter or tag key=value, logged in runs.params."),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="The run's id in the log (default: a fresh one).")
    ] = None,
    trace: Annotated[
        str | None,
        typer.Option(
            help="OpenTelemetry traces and metrics: none, console, otlp (OTEL_EXPORTER_OTLP_ENDPOINT), "
            "jsonl (files beside the log). Default MOOT_TRACE, else none."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="LLM agents: any litellm model (openai/gpt-4o-mini, hosted_vllm/NAME, ollama/llama3); "
            "default moot/simulated, an offline stand-in.",
            rich_help_panel="LLM agents",
        ),
    ] = None,
    api_base: Annotated[
        str | None,
        typer.Option(help="LLM endpoint, e.g. http://127.0.0.1:8000/v1.", rich_help_panel="LLM agents"),
    ] = None,
    rpm: Annotated[
        float | None, typer.Option(help="Requests per minute, whole cluster.", rich_help_panel="LLM agents")
    ] = None,
    tpm: Annotated[
        float | None, typer.Option(help="Tokens per minute, whole cluster.", rich_help_panel="LLM agents")
    ] = None,
    in_flight: Annotated[
        int | None, typer.Option(help="Calls in flight at once (default 64).", rich_help_panel="LLM agents")
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Dollars the run may spend; it stops when crossed.", rich_help_panel="LLM agents"),
    ] = None,
    llm_cache: Annotated[
        str | None,
        typer.Option(
            help="Response cache file (default LOG.llm-cache; '' turns it off).", rich_help_panel="LLM agents"
        ),
    ] = None,
    llm_timeout: Annotated[
        float | None, typer.Option(help="Seconds per attempt (default 60).", rich_help_panel="LLM agents")
    ] = None,
    max_llm_error_rate: Annotated[
        float | None,
        typer.Option(
            help="Fail the run when more than this share of a round's LLM calls fail (default 0.5; "
            "a round in which every call failed always fails it).",
            rich_help_panel="LLM agents",
        ),
    ] = None,
    price: Annotated[
        list[str] | None,
        typer.Option(
            help="Dollars per token for a model litellm cannot price, MODEL=PROMPT,COMPLETION "
            "(e.g. openai/my-model=1e-6,2e-6); repeatable. Without one, --budget cannot count it.",
            rich_help_panel="LLM agents",
        ),
    ] = None,
    message_cap: Annotated[
        int | None, typer.Option(help="Most messages one agent may send in a round (default 10,000).")
    ] = None,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate",
            help="Print the LLM calls, tokens and cost the run would take, and run nothing (with a "
            "script: at its first launch).",
            rich_help_panel="LLM agents",
        ),
    ] = False,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            help="Checkpoint every N rounds, for moot resume and host restarts (0: none; default 1 "
            "with LLM agents, else 10)."
        ),
    ] = None,
    on_flood: Annotated[
        str | None,
        typer.Option(help="An agent over --message-cap: error (default) or truncate (keep its first)."),
    ] = None,
    segments_uri: Annotated[
        str | None,
        typer.Option(
            help="Object store for the hosts' rows on a cluster whose nodes share no folder with the "
            "driver (s3://bucket/prefix, gs://, abfs://, hdfs://); copied beside the log at the end."
        ),
    ] = None,
) -> None:
    """Run a study script, or the built-in opinion study on a protocol.

    With a script, --log, --seed, --rounds, --hosts, --state-every, --messages,
    --stop and --trace apply to every launch() in it (a note says when they replace what the
    script says); -p values reach it through orchestrator.params().
    """
    params = dict(_parse_option(p, "-p") for p in param or [])
    if params:
        os.environ["MOOT_PARAMS"] = json.dumps(params)
    stop_spec = " | ".join(stop) if stop else None
    llm = _given(
        model=model,
        api_base=api_base,
        rpm=rpm,
        tpm=tpm,
        max_in_flight=in_flight,
        budget=budget,
        cache=llm_cache,
        timeout=llm_timeout,
        max_error_rate=max_llm_error_rate,
        prices=_prices(price or []) or None,
    )
    if script is not None:
        _check_script_flags(ctx, script)
        overrides = _given(
            log=None if log is None else str(log),
            seed=seed,
            rounds=rounds,
            hosts=hosts,
            state_every=state_every,
            messages=messages,
            stop=stop_spec,
            trace=trace,
            run_id=run_id,
            llm=llm or None,
            message_cap=message_cap,
            on_flood=on_flood,
            checkpoint_every=checkpoint_every,
            segments_uri=segments_uri,
            estimate=estimate or None,
        )
        _run_script(script, address, local, overrides)
        return
    from orchestrator.launcher import launch

    name = protocol or "gossip"
    try:
        proto, population = _builtin_study(name, agents, agent, option or [], state or [], dim)
        n = len(population)
        if estimate:
            from orchestrator.estimate import estimate as estimate_cost

            settings = _llm_settings(llm)
            cost = estimate_cost(
                population, proto, rounds=100 if rounds is None else rounds, seed=seed or 0, llm=settings
            )
            console.print(cost.render(), highlight=False)
            return
    except MootError as exc:
        _fail(exc)
        return
    classes = ", ".join(c.__name__ for c in population.classes)
    console.print(
        f"[bold]moot[/] {n:,} agents ({classes}) · {proto!r} · seed {seed or 0} · "
        f"{'in-process' if local else address or 'local Ray'}"
    )
    _play(
        lambda: launch(
            population,
            proto,
            rounds=100 if rounds is None else rounds,
            seed=seed or 0,
            log=log or Path("moot.duckdb"),
            runtime="local" if local else "ray",
            hosts=hosts,
            address=address,
            state_every=10 if state_every is None else state_every,
            stop=stop_spec,
            messages=messages,
            params=params,
            llm=_llm_settings(llm),
            trace=trace,
            run_id=run_id,
            progress=True,
            message_cap=10_000 if message_cap is None else message_cap,
            on_flood=on_flood or "error",  # type: ignore[arg-type]  # launch checks it
            checkpoint_every=checkpoint_every,
            segments_uri=segments_uri,
        )
    )


_STANDARD = {
    "agents",
    "messages",
    "seconds",
    "mean",
    "variance",
    "min",
    "max",
    "spread",
    "max_change",
    "llm_calls",
    "llm_errors",
    "llm_tokens",
    "llm_cost",
}


def _given(**values: Any) -> dict[str, Any]:
    """The options the user gave (those not None)."""
    return {k: v for k, v in values.items() if v is not None}


def _builtin_study(
    name: str,
    n: int | None,
    agent: str | None,
    options: list[str],
    state: list[str],
    dim: int | None = None,
) -> tuple[MessageProtocol, Population]:
    """The built-in study: protocol `name` with `options`, `n` agents of class `agent` (None: as many
    as the protocol's set-up holds, else 10,000)."""
    from agents.population import parse_column
    from agents.registry import get_agent

    if n is not None and n < 1:
        raise ConfigError(f"--agents must be at least 1, got {n}; e.g. --agents 1000.")
    kwargs = dict(_parse_option(o) for o in options)
    agent_cls = get_agent(agent) if agent else None
    if agent_cls is not None:
        for key, value in agent_cls.protocol_options.get(name, {}).items():
            kwargs.setdefault(key, value)
    if name == "gossip":
        kwargs.setdefault("mode", "push-pull")
        kwargs.setdefault("fanout", 2)
    proto = make_protocol(name, kwargs)
    columns: dict[str, Any] = {k: parse_column(str(v)) for k, v in (_parse_option(a, "-a") for a in state)}
    if dim is not None:
        columns["dim"] = dim
    size = proto.natural_size() if n is None else n
    return proto, proto.default_population(10_000 if size is None else size, agent_cls, **columns)


def _prices(specs: list[str]) -> dict[str, tuple[float, float]]:
    """``--price MODEL=PROMPT,COMPLETION`` flags as `LLMConfig.prices`."""
    out: dict[str, tuple[float, float]] = {}
    for spec in specs:
        model, _, rest = spec.partition("=")
        parts = rest.split(",")
        try:
            prompt, completion = (float(p) for p in parts)
        except ValueError:
            raise typer.BadParameter(
                f"--price {spec!r} is not MODEL=PROMPT,COMPLETION in dollars per token; "
                "e.g. --price openai/my-model=1e-6,2e-6"
            ) from None
        if not model or prompt < 0 or completion < 0:
            raise typer.BadParameter(f"--price {spec!r}: name the model, with prices >= 0.")
        out[model.strip()] = (prompt, completion)
    return out


def _llm_settings(flags: dict[str, Any]) -> Any:
    """An `LLMConfig` from the LLM flags (None without any: launch then uses the defaults)."""
    if not flags:
        return None
    from orchestrator.llm import LLMConfig

    return LLMConfig(**flags)


def _print_summary(summary: dict[str, Any], final: dict[str, float] | None = None) -> None:
    table = Table(title="run summary", show_header=False)
    for key in (
        "agents",
        "hosts",
        "rounds",
        "messages",
        "actions",
        "final_spread",
        "stop_reason",
        "seconds",
        "messages_per_second",
        "actions_per_second",
        "llm_calls",
        "llm_errors",
        "llm_tokens",
        "llm_cost",
    ):
        if key not in summary:  # only what means something for this protocol
            continue
        value = summary.get(key)
        if key in ("llm_calls", "llm_errors", "llm_tokens"):
            value = int(value or 0)
        if key == "llm_cost" and isinstance(value, float) and math.isnan(value):
            value = "unknown (no price for the model: --price MODEL=PROMPT,COMPLETION)"
        shown = (
            f"{value:,}"
            if isinstance(value, int)
            else f"{value:.3g}"
            if isinstance(value, float)
            else str(value)
        )
        table.add_row(key.replace("_", " "), shown)
    for key, value in (final or {}).items():  # the protocol's own metrics (a task score, ...)
        if key not in _STANDARD and key not in summary and "." not in key:
            table.add_row(key.replace("_", " "), f"{value:.6g}")
    console.print(table)
    console.print(f"log: [bold]{summary['log']}[/] (run_id {summary['run_id']})")
    from orchestrator.log.segments import parts_dir, run_folder

    if (parts_dir(Path(summary["log"])) / "messages" / run_folder(summary["run_id"])).is_dir():
        console.print(
            f"     the hosts' rows are in {parts_dir(Path(summary['log']))}/: keep it beside the file "
            f"(moot compact moves them into it)"
        )
    run_id = summary["run_id"]
    own = [k for k in (final or {}) if k not in _STANDARD and "." not in k]
    if summary.get("final_spread") is None and own and summary.get("rounds", 0) <= 30:
        _print_rounds(summary["log"], run_id, own[:3])
    if summary.get("final_spread") is None and own:
        query = (
            f"SELECT round, value AS {own[0]} FROM metrics WHERE run_id = '{run_id}' "
            f"AND name = '{own[0]}' ORDER BY round"
        )
    elif summary.get("final_spread") is None and (view := _protocol_view(Path(summary["log"]))):
        query = f"SELECT * FROM {view} WHERE run_id = '{run_id}'"
    else:
        query = f"SELECT round, mean, spread FROM consensus_by_round WHERE run_id = '{run_id}' ORDER BY round"
    console.print(f'try: moot sql {summary["log"]} "{query}"', highlight=False, soft_wrap=True)
    console.print(
        f"     moot report {summary['log']} --run {run_id} --out report.html   (plots, offline)",
        highlight=False,
        soft_wrap=True,
    )
    if "llm_calls" in summary:
        cost = f"SELECT * FROM llm_cost_by_round WHERE run_id = '{run_id}' ORDER BY round"
        console.print(f'     moot sql {summary["log"]} "{cost}"', highlight=False, soft_wrap=True)


def _protocol_view(log: Path) -> str | None:
    """A view the run's protocol shipped into the log (the first by name), for the closing hint."""
    import duckdb

    from orchestrator.log.schema import TABLES, VIEWS

    shipped = set(VIEWS) | {t.name for t in TABLES}
    try:
        con = duckdb.connect(str(log), read_only=True)
        try:
            names = [
                r[0]
                for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
            ]
        finally:
            con.close()
    except duckdb.Error:
        return None
    own = sorted(n for n in names if n not in shipped)
    return own[0] if own else None


def _print_rounds(log: str, run_id: str, names: list[str]) -> None:
    """The protocol's first metrics, per round (an accuracy, a score), from the log."""
    from orchestrator.log import query

    cols = ", ".join(f"max(value) FILTER (name = '{n}') AS \"{n}\"" for n in names)
    rows = query(
        log, f"SELECT round, {cols} FROM metrics WHERE run_id = '{run_id}' GROUP BY round ORDER BY round"
    ).to_pylist()
    table = Table(title="per round")
    for col in ("round", *names):
        table.add_column(col.replace("_", " "), justify="right")
    for r in rows:
        table.add_row(str(r["round"]), *(f"{r[n]:.4g}" if r[n] is not None else "" for n in names))
    console.print(table)


def _run_script(script: Path, address: str | None, local: bool, overrides: dict[str, Any]) -> None:
    if not script.is_file():
        err_console.print(f"[bold red]error:[/] no script at {str(script)!r}; give the path of a .py study.")
        raise typer.Exit(2)
    if address:
        os.environ["MOOT_ADDRESS"] = address
    if local:
        os.environ["MOOT_RUNTIME"] = "local"
    from orchestrator.launcher import CLI_OVERRIDES

    if overrides:
        os.environ[CLI_OVERRIDES] = json.dumps(overrides)
    os.environ.setdefault("MOOT_PROGRESS", "1")
    sys.argv = [str(script)]
    sys.path.insert(0, str(script.parent.resolve()))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except MootError as exc:
        _fail(exc)
    except RunInterrupted as exc:
        _interrupted(exc)


@app.command(name="sweep")
def sweep_command(
    script: Annotated[Path, typer.Argument(help="A study script that calls launch().")],
    param: Annotated[
        list[str],
        typer.Option(
            "--param",
            "-p",
            help="A grid axis: key=1,2,4 or key=0..9 (ends included); seed=... sets the seed.",
        ),
    ],
    log: Annotated[Path, typer.Option(help="The sweep's DuckDB log (every run lands in it).")] = Path(
        "sweep.duckdb"
    ),
    name: Annotated[str | None, typer.Option(help="Run id prefix (default: the log's name).")] = None,
    concurrency: Annotated[int, typer.Option(help="Runs at once.")] = 2,
    address: Annotated[str | None, typer.Option(help="Ray cluster to run on (default: local Ray).")] = None,
    local: Annotated[bool, typer.Option("--local", help="Run each point in-process, without Ray.")] = False,
    rounds: Annotated[int | None, typer.Option(help="Round budget of every run.")] = None,
    hosts: Annotated[int | None, typer.Option(help="Hosts of every run.")] = None,
) -> None:
    """Run a study script over a grid of parameters, concurrently, into one log.

    Each point is a run with its own run_id (NAME.key=value...) and its parameters in
    runs.params; run the same sweep again to finish one that was interrupted: finished
    points are skipped.
    """
    from orchestrator.sweeps import parse_values, sweep

    try:
        grid = {}
        for text in param:
            key, _, values = text.partition("=")
            if not _ or not key.strip():
                raise ConfigError(f"--param {text!r} is not key=values; e.g. --param fanout=1,2,4.")
            grid[key.strip()] = parse_values(key.strip(), values)
        extra = [*(["--rounds", str(rounds)] if rounds else []), *(["--hosts", str(hosts)] if hosts else [])]
        result = sweep(
            script,
            grid,
            log=log,
            name=name,
            concurrency=concurrency,
            address=address,
            local=local,
            extra_args=extra,
            progress=True,
        )
    except MootError as exc:
        _fail(exc)
        return
    console.print(
        f"sweep: {len(result.run_ids)} points: {len(result.ran)} ran, {len(result.skipped)} already done, "
        f"{len(result.failed)} failed · log: [bold]{result.log}[/]"
    )
    for run_id, output in result.failed.items():
        err_console.print(f"[bold red]failed:[/] {run_id}\n{output}", highlight=False)
    keys = ", ".join(f"params->>'{k}' AS {k}" for k in grid)
    console.print(
        f'try: moot sql {result.log} "SELECT {keys}, rounds, stop_reason FROM runs ORDER BY run_id"',
        highlight=False,
        soft_wrap=True,
    )
    if result.failed:
        raise typer.Exit(1)


@app.command()
def sql(
    log: Annotated[Path, typer.Argument(help="A moot DuckDB log.")],
    query: Annotated[str, typer.Argument(help="A read-only SQL query.")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    limit: Annotated[int, typer.Option(help="Rows shown in table format.")] = 50,
    run_id: Annotated[
        str | None, typer.Option("--run", help="Scope every table to this run_id (default: all runs).")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Stop the query after this many seconds (a live run allows 120 at most)."),
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="Table format: never cut cells to the terminal's width.")
    ] = False,
) -> None:
    """Query a log through a read-only, locked-down connection (a live run's log too). Ctrl-C stops it."""
    from orchestrator.log import query as run_query

    if fmt not in ("table", "csv", "json"):
        err_console.print(f"[bold red]error:[/] unknown --format {fmt!r}; use table, csv or json.")
        raise typer.Exit(2)
    try:
        result = run_query(log, query, run_id=run_id, text=True, timeout=timeout)
    except MootError as exc:
        _fail(exc)
        return
    except KeyboardInterrupt:
        err_console.print("moot sql: query stopped (Ctrl-C)")
        raise typer.Exit(130) from None
    if fmt == "csv":
        _write_csv(result)
    elif fmt == "json":
        typer.echo(json.dumps(_json_rows(result), allow_nan=False))
    else:
        table = Table(*result.column_names)
        for row in result.slice(0, limit).to_pylist():
            table.add_row(*(escape(_cell(v)) for v in row.values()))  # text, never Rich markup
        _table_console(wide).print(table)
        if result.num_rows > limit:
            console.print(f"({result.num_rows:,} rows, {limit} shown; --limit or --format csv for more)")


def _write_csv(result: Any) -> None:
    """RFC 4180 CSV: a field quoted only when it must be (a comma, a quote, a newline), NULL empty."""
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(result.column_names)
    for batch in result.to_batches():
        for row in batch.to_pylist():
            writer.writerow(
                ["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in row.values()]
            )


def _cell(v: Any) -> str:
    if v is None:
        return "NULL"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _json_rows(result: Any) -> list[dict[str, Any]]:
    """Rows for --format json: nested values (JSON text from the query) parsed back, NaN as null."""
    import decimal
    import math

    import pyarrow as pa

    nested = {
        f.name
        for f in result.schema
        if pa.types.is_string(f.type) and (f.metadata or {}).get(b"moot_json") == b"1"
    }
    rows: list[dict[str, Any]] = result.to_pylist()
    for row in rows:
        for k, v in row.items():
            if isinstance(v, float) and not math.isfinite(v):
                row[k] = None
            elif isinstance(v, decimal.Decimal):
                row[k] = int(v) if v == v.to_integral_value() else float(v)
            elif k in nested and isinstance(v, str):
                row[k] = json.loads(v, parse_constant=lambda _: None)  # NaN, Infinity: null
    return rows


@app.command()
def protocols(
    name: Annotated[str | None, typer.Argument(help="A protocol: show its options and defaults.")] = None,
) -> None:
    """List the installed protocols (entry-point group moot.protocols), or one protocol's options."""
    from protocols import available_protocols

    if name is None:
        for known in available_protocols():
            typer.echo(known)
        return
    try:
        options = protocol_options(name)
    except MootError as exc:
        _fail(exc)
        return
    table = Table("option (-o)", "type", "default", title=f"{name}: moot run --protocol {name} -o KEY=VALUE")
    for option, kind, default in options:
        table.add_row(option, escape(kind), escape(default))
    _table_console().print(table)


def protocol_options(name: str) -> list[tuple[str, str, str]]:
    """(option, type, default) of protocol `name`'s constructor, as `-o` takes them."""
    import inspect

    from protocols import get_protocol

    cls = get_protocol(name)
    out = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = "(required)" if p.default is inspect.Parameter.empty else repr(p.default)
        out.append((p.name, str(p.annotation).replace("typing.", ""), default))
    return out


@app.command()
def compact(
    log: Annotated[Path, typer.Argument(help="A moot DuckDB log.")],
    run_id: Annotated[
        str | None, typer.Option("--run", help="Only this run (default: every ended run).")
    ] = None,
) -> None:
    """Move the rows the hosts wrote as segments (LOG.parts/) into the log file itself, so that the
    file alone holds them (to copy it without its folder, or ATTACH it from another database)."""
    from orchestrator.log import LogWriter

    try:
        if not log.is_file():
            raise ConfigError(
                f"No log at {str(log)!r}; pass the path given to launch(log=...) or `moot run --log`."
            )
        writer = LogWriter(log)
        try:
            ended = [
                str(r[0])
                for r in writer.con.execute(
                    "SELECT DISTINCT run_id FROM segments WHERE run_id IN "
                    "(SELECT run_id FROM runs WHERE status <> 'running') ORDER BY 1"
                ).fetchall()
            ]
            if run_id is not None and run_id not in ended:
                raise ConfigError(
                    f"Run {run_id!r} has no segments to compact in {str(log)!r} (compacted already, "
                    f"still running, or not in this log); runs with segments: {', '.join(ended) or 'none'}."
                )
            for rid in [run_id] if run_id else ended:
                rows = writer.compact(rid)
                typer.echo(f"{rid}: {rows:,} rows moved into {log}")
        finally:
            writer.close()
    except MootError as exc:
        _fail(exc)


def _existing_log(log: Path) -> None:
    if not log.is_file():
        _fail(
            ConfigError(
                f"No log at {str(log)!r}; pass the path given to launch(log=...) or `moot run --log`."
            )
        )


def _play(run: Callable[[], Any]) -> None:
    """Play a run (resumed, forked) and print its summary, or its error."""
    try:
        result = run()
    except MootError as exc:
        _fail(exc)
        return
    except RunInterrupted as exc:
        _interrupted(exc)
    _print_summary(result.summary(), result.final)


@app.command()
def resume(
    log: Annotated[Path, typer.Argument(help="A moot DuckDB log.")],
    run_id: Annotated[
        str | None, typer.Option("--run", help="The run (default: the latest that did not finish).")
    ] = None,
    hosts: Annotated[int | None, typer.Option(help="Hosts to go on with (default: as before).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster to join: auto, ray://host:10001.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Go on in-process, without Ray.")] = False,
) -> None:
    """Go on with a run that was killed, interrupted or failed on a host, from its last checkpoint.

    Its log ends as if it had never stopped. Run it from the study script's directory.
    """
    from orchestrator.durable import resume as resume_run

    _existing_log(log)
    _play(
        lambda: resume_run(
            log, run_id, hosts=hosts, runtime="local" if local else None, address=address, progress=True
        )
    )


@app.command()
def fork(
    log: Annotated[Path, typer.Argument(help="A moot DuckDB log.")],
    run_id: Annotated[str, typer.Option("--run", help="The parent run.")],
    at: Annotated[int, typer.Option(help="Branch after this round of the parent.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="An agent's state AGENT.FIELD=VALUE after round --at (e.g. 0.opinion=1)."),
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="A protocol option to change, key=value.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="A tag key=value for runs.params.")
    ] = None,
    new_run_id: Annotated[str | None, typer.Option("--run-id", help="The fork's run id.")] = None,
    each: Annotated[
        list[str] | None,
        typer.Option(
            "--each",
            help="A sweep of forks, one per value: KEY=V1,V2,... (KEY an option or AGENT.FIELD); "
            "repeatable (every combination).",
        ),
    ] = None,
    hosts: Annotated[int | None, typer.Option(help="Hosts (default: as the parent).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster to join: auto, ray://host:10001.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Run in-process, without Ray.")] = False,
) -> None:
    """Branch a run after round --at, with agents' state or protocol options changed.

    The fork's rows up to --at are the parent's; --each makes one fork per value (a sweep).
    """
    from orchestrator.durable import fork as fork_run

    _existing_log(log)
    if each:
        _fork_sweep(log, run_id, at, each, hosts, "local" if local else None, address)
        return
    _play(
        lambda: fork_run(
            log,
            run_id,
            at=at,
            set=dict(_parse_option(x, "--set") for x in set_ or []),
            options=dict(_parse_option(o) for o in option or []),
            params=dict(_parse_option(p, "-p") for p in param or []),
            new_run_id=new_run_id,
            hosts=hosts,
            runtime="local" if local else None,
            address=address,
            progress=True,
        )
    )


def _fork_sweep(
    log: Path,
    run_id: str,
    at: int,
    each: list[str],
    hosts: int | None,
    runtime: str | None,
    address: str | None,
) -> None:
    """`moot fork --each`: one fork per point, then a table of them."""
    from orchestrator.durable import fork_sweep

    grid = {}
    for spec in each:
        key, raw = _parse_option(spec, "--each")
        grid[key] = [_parse_option(f"{key}={v}", "--each")[1] for v in str(raw).strip("[]").split(",")]
    try:
        runs = fork_sweep(log, run_id, at=at, grid=grid, hosts=hosts, runtime=runtime, address=address)
    except MootError as exc:
        _fail(exc)
        return
    table = Table(title=f"forks of {run_id} after round {at}")
    for col in ("run_id", "rounds", "stop reason", "final spread"):
        table.add_column(col)
    for run in runs:
        spread = run.final.get("spread")
        table.add_row(run.run_id, str(run.rounds), run.stop_reason, "" if spread is None else f"{spread:.4g}")
    _table_console().print(table)
    console.print(
        f'compare: moot sql {log} "SELECT run_id, params, stop_reason FROM runs WHERE parent_run = '
        f"'{run_id}'\"",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def interview(
    log: Annotated[Path, typer.Argument(help="A moot DuckDB log.")],
    question: Annotated[str, typer.Argument(help="What to ask, e.g. 'Why did you change your mind?'.")],
    run_id: Annotated[str, typer.Option("--run", help="The run.")],
    agents: Annotated[str, typer.Option(help="Agents to ask: 0..99, 3,5,8 or a mix.")],
    at: Annotated[int, typer.Option(help="Ask each agent as it was after this round (a checkpoint's).")],
    model: Annotated[
        str | None, typer.Option(help="Another model for the answers (default: the run's own).")
    ] = None,
) -> None:
    """Ask a run's LLM agents a question, each as it was after round --at.

    The answers go to the interviews table; the run itself is not changed.
    """
    from orchestrator.interview import interview as ask
    from orchestrator.interview import parse_agents
    from orchestrator.llm.offline import model_label

    _existing_log(log)
    try:
        llm = None
        if model is not None:
            from orchestrator.checkpoint import checkpoint_dir, load_plan

            plan = load_plan(checkpoint_dir(log, run_id), run_id)
            llm = plan.llm.with_overrides(model=model) if plan.llm is not None else None
        table = ask(log, run_id, parse_agents(agents), at, question, llm=llm)
    except MootError as exc:
        _fail(exc)
        return
    out = Table(title=f"{question} (run {run_id}, after round {at})")
    for col in ("agent", "answer", "model", "cached"):
        out.add_column(col)
    for row in table.to_pylist():
        answer = row["answer"] if row["answer"] is not None else f"(no answer: {row['error']})"
        out.add_row(
            str(row["agent"]),
            escape(answer),
            escape(model_label(row["model"])),
            "yes" if row["cached"] else "",
        )
    _table_console().print(out)
    console.print(f"in the log: moot sql {log} \"SELECT * FROM interviews WHERE run_id = '{run_id}'\"")


@app.command()
def analyze(
    log: Annotated[Path, typer.Argument(help="A moot DuckDB log.")],
    run_id: Annotated[str | None, typer.Option("--run", help="The run (default: the latest).")] = None,
    window: Annotated[
        int | None, typer.Option(help="Rounds per window (default: a tenth of the run).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
) -> None:
    """Agent-society diagnostics of a run, whole and by window of rounds.

    Participation, inequality, reciprocity, HITS, PageRank and influence persistence, degree
    tails, assortativity, communities, the friendship paradox, inertia, consensus, lexical
    turnover (orchestrator/analysis/README.md).
    """
    from orchestrator.analysis import METRICS, overall
    from orchestrator.analysis import analyze as diagnose

    if fmt not in ("table", "json", "csv"):
        raise typer.BadParameter(f"--format {fmt!r}: use table, json or csv.")
    _existing_log(log)
    try:
        result = diagnose(log, run_id, window)
    except MootError as exc:
        _fail(exc)
        return
    if fmt == "json":
        typer.echo(json.dumps(overall(result), indent=2))
        return
    if fmt == "csv":
        _write_csv(result)
        return
    table = Table(title=f"diagnostics of {log}")
    for col in ("metric", "whole run", "by window (first round: value)", "what it counts"):
        table.add_column(col)
    rows = result.to_pylist()
    for name in dict.fromkeys(r["metric"] for r in rows):
        whole = [r["value"] for r in rows if r["metric"] == name and r["window"] is None]
        series = [
            f"{r['window']}: {r['value']:.3g}"
            for r in rows
            if r["metric"] == name and r["window"] is not None
        ]
        table.add_row(name, f"{whole[0]:.4g}" if whole else "", ", ".join(series), METRICS.get(name, ""))
    _table_console(True).print(table)


@app.command()
def export(
    log: Annotated[Path, typer.Argument(help="A moot DuckDB log.")],
    to: Annotated[Path, typer.Option(help="The folder to write the files to.")],
    run_id: Annotated[str | None, typer.Option("--run", help="The run (default: the latest).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    view: Annotated[list[str] | None, typer.Option(help="A view to export too (repeatable).")] = None,
) -> None:
    """Write every table of a run (and any named view) as Parquet or CSV files, its rows only."""
    from orchestrator.analysis import export as export_run

    _existing_log(log)
    try:
        written = export_run(log, run_id, to, fmt, tuple(view or ()))
    except MootError as exc:
        _fail(exc)
        return
    for name, rows in written.items():
        typer.echo(f"{to / name}: {rows:,} rows")


@app.command()
def report(
    log: Annotated[Path, typer.Argument(help="A moot DuckDB log.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    run_id: Annotated[
        list[str] | None, typer.Option("--run", help="A run to show (repeatable; default: the log's runs).")
    ] = None,
) -> None:
    """Write one self-contained HTML file of plots about runs; it opens offline.

    Health, every metric over rounds (runs overlaid), the protocol's own plots, LLM cost, and
    the diagnostics.
    """
    from orchestrator.analysis.report import report as write_report

    _existing_log(log)
    try:
        written = write_report(log, out, list(run_id or []))
    except MootError as exc:
        _fail(exc)
        return
    typer.echo(f"{written} ({written.stat().st_size / 1e6:.2f} MB): open it in a browser, no network needed")


@app.command(name="agents")
def agents_command() -> None:
    """List the registered agent classes (entry-point group moot.agents), for --agent."""
    from agents.registry import available_agents

    for name in available_agents():
        typer.echo(name)


if __name__ == "__main__":
    app()
