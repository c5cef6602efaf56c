"""What each suite metric costs on a CPU, as `scripts/measure-metric-costs` measured it
(bench/metrics/costs.json): seconds to score 1,000 generated images with that metric
alone, on one thread. `genbench list metrics` shows them; a metric the file does not hold
(or a missing file) shows "-". Nothing here times anything."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

COSTS_FILE = Path(__file__).with_name("costs.json")


@dataclass(frozen=True)
class Costs:
    seconds: dict[str, float | None]  # suite metric name -> s per 1,000 images (None: not run)
    measured_on: str  # the CPU, date, torch and threads of the measurement


def read_costs(path: Path = COSTS_FILE) -> Costs | None:
    """The measured costs, or None where there is no (readable) file."""
    try:
        raw = json.loads(path.read_text())
        seconds = {str(k): _seconds(v) for k, v in raw["seconds_per_1000_images"].items()}
        on = f"{raw['cpu']}, {raw['date']}, torch {raw['torch']}, {raw['threads']} thread"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return Costs(seconds, on + ("" if raw["threads"] == 1 else "s"))


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"not a cost: {value!r}")
    return float(value)


def format_cost(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3g} s"


def cost_line(names: list[str], costs: Costs | None) -> str:
    """`CPU cost per 1,000 images: fd_pixels 0.05 s, fd_inception 41 s, ...` of a metric
    group's suite names."""
    seconds = {} if costs is None else costs.seconds
    return "CPU cost per 1,000 images: " + ", ".join(
        f"{name} {format_cost(seconds.get(name))}" for name in names
    )


def costs_header(costs: Costs | None) -> str:
    if costs is None:
        return "CPU costs: not measured (run scripts/measure-metric-costs on a quiet machine)"
    return f'CPU costs measured on {costs.measured_on}; "-": not measured'
