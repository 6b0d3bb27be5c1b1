"""A rich progress bar per round, showing messages and spread."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.coordinator import RoundMetrics

__all__ = ["RoundBar"]


class RoundBar:
    """Progress over rounds; `update` is the coordinator's progress callback."""

    def __init__(self, rounds: int, agents: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]round"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.task = self.progress.add_task("rounds", total=rounds, info=f"{agents:,} agents")
        self.messages = 0

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        # A run that stops early (consensus) is complete: close the bar at its round.
        done = self.progress.tasks[0].completed
        self.progress.update(self.task, total=done)
        self.progress.stop()

    def update(self, round: int, metrics: RoundMetrics) -> None:
        self.messages += int(metrics.get("messages", 0))
        spread = metrics.get("spread")
        info = f"{self.messages:,} msgs"
        if spread is not None:
            info += f"  spread {spread:.2e}"
        self.progress.update(self.task, completed=round + 1, info=info)
