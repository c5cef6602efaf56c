"""Report figures as PNG bytes (matplotlib, no display)."""

from __future__ import annotations

import io
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.metrics import direction  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def pareto_front(x: np.ndarray, y: np.ndarray, y_lower_is_better: bool) -> np.ndarray:
    """Indices of points no other point beats on both higher x and better y."""
    sign = 1 if y_lower_is_better else -1
    front = []
    for i in range(len(x)):
        dominated = any(
            x[j] >= x[i] and sign * y[j] <= sign * y[i] and (x[j] > x[i] or y[j] != y[i])
            for j in range(len(x))
        )
        if not dominated:
            front.append(i)
    return np.array(sorted(front, key=lambda i: x[i]), dtype=int)


def quality_vs_speed(
    labels, speed, quality, quality_name: str, speed_name: str, references: set[str]
) -> bytes:
    """Quality against images per second (log x), one point per model, Pareto front drawn."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x, y = np.asarray(speed, float), np.asarray(quality, float)
    for xi, yi, name in zip(x, y, labels, strict=True):
        ref = name in references
        ax.scatter(xi, yi, c="#999999" if ref else "#1f77b4", marker="s" if ref else "o", zorder=3)
    learned = np.array([n not in references for n in labels])
    if learned.sum() >= 2:
        idx = np.flatnonzero(learned)
        front = idx[pareto_front(x[idx], y[idx], direction(quality_name) == "lower")]
        ax.plot(x[front], y[front], "--", c="#d62728", label="Pareto front (learned models)")
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    if (y > 0).all() and y.max() > 20 * y.min():  # references can sit decades apart
        ax.set_yscale("log")
    ax.set_xlabel(f"{speed_name} (log scale, higher is faster)")
    ax.set_ylabel(f"{quality_name} ({direction(quality_name)} is better)")
    ax.grid(alpha=0.3)
    _label_points(ax, x, y, labels)
    return _png(fig)


# Label positions (offset in points, alignment), in order of preference: to the right of
# the point, then (near the right edge) to its left.
_LABEL_SPOTS = [
    ((4, 3), "left"), ((4, -13), "left"), ((4, 15), "left"), ((4, -25), "left"),
    ((-4, 3), "right"), ((-4, -13), "right"),
]  # fmt: skip


def _label_points(ax, x: np.ndarray, y: np.ndarray, labels) -> None:
    """Name each point at the first spot whose label covers no other point, no label placed
    before and no figure edge, else at the spot covering fewest (a DDIM step sweep puts
    several models a few pixels apart)."""
    ax.figure.tight_layout()
    ax.figure.canvas.draw()  # applies the pending autoscale: data -> pixels is final from here
    renderer = ax.figure.canvas.get_renderer()
    points = ax.transData.transform(np.column_stack([x, y]))
    placed = []
    for i in np.argsort(x, kind="stable"):
        best = None  # (hits, label, its box): the first spot with the fewest hits
        for offset, align in _LABEL_SPOTS:
            text = ax.annotate(
                labels[i], (x[i], y[i]), textcoords="offset points", xytext=offset, ha=align,
                fontsize=8,
            )  # fmt: skip
            text.set_in_layout(False)  # the final tight_layout must not move the points again
            box = text.get_window_extent(renderer).padded(1)
            hits = sum(box.contains(*p) for j, p in enumerate(points) if j != i)
            hits += sum(box.overlaps(b) for b in placed)
            hits += box.x0 < 0 or box.x1 > ax.figure.bbox.x1  # cut off by the figure edge
            if best is None or hits < best[0]:
                if best is not None:
                    best[1].remove()
                best = (hits, text, box)
            else:
                text.remove()
            if hits == 0:
                break
        placed.append(best[2])


def throughput_vs_batch(sweeps: dict[str, list[dict]]) -> bytes:
    """Images per second against batch size (log-log), one line per model."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for model, rows in sweeps.items():
        bs = [r["batch_size"] for r in rows]
        ax.plot(bs, [r["img_s"] for r in rows], "o-", label=model)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (log scale)")
    ax.set_ylabel("images per second (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    return _png(fig)


def loss_curves(histories: dict[str, list[tuple[int, float]]]) -> bytes:
    n = len(histories)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    for ax, (model, points) in zip(axes.flat, histories.items(), strict=False):
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, lw=1)
        ax.set_title(textwrap.fill(model, 44), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return _png(fig)


def class_histograms(hists: dict[str, dict[str, list[int]]]) -> bytes:
    """Per model: share of samples per predicted class against the reference classes (the
    training labels, or the classes asked of a conditional model)."""
    n = len(hists)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.4 * rows + 0.4), squeeze=False, layout="constrained"
    )
    for ax, (model, h) in zip(axes.flat, hists.items(), strict=False):
        name = h.get("reference", "train")  # stores written before "reference" existed
        samples = np.asarray(h["samples"], float)
        reference = np.asarray(h[name], float)
        k = np.arange(len(reference))
        ax.bar(k - 0.2, reference / reference.sum(), width=0.4, color="#bbbbbb", label=name)
        ax.bar(
            k + 0.2, samples / max(samples.sum(), 1), width=0.4, color="#1f77b4", label="samples"
        )
        ax.set_title(f"{model} (vs {name})", fontsize=9)
        ax.set_xticks(k)
        ax.tick_params(labelsize=7)
    # above the panels: inside one it covered the last bars
    handles, _ = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, ["reference", "samples"], loc="outside upper center", ncol=2, fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return _png(fig)


def option_sweep(
    options: list[float],
    fd: np.ndarray,
    fd_name: str,
    against: dict[str, np.ndarray],
    best: dict[str, float],
    symbol: str,
) -> bytes:
    """FD against each of `against` (conditional accuracy, precision, recall) across a
    sampling option's values (`symbol`: the guidance scale w, the truncation psi), one panel
    per metric (the FID-against-IS curves of Ho & Salimans 2022, the quality-diversity
    curves of Brock et al. 2019): each point labelled with its value, the best value on the
    panel's metric starred."""
    n = len(against)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    w = np.asarray(options, float)
    y = np.asarray(fd, float)
    for ax, (metric, values) in zip(axes.flat, against.items(), strict=True):
        x = np.asarray(values, float)
        ok = ~(np.isnan(x) | np.isnan(y))
        ax.plot(x[ok], y[ok], "o-", c="#1f77b4", zorder=2)
        if metric in best:
            star = ok & (w == best[metric])
            ax.scatter(x[star], y[star], marker="*", s=260, c="#f2b01e", edgecolors="k",
                       zorder=3, label=f"best {symbol} for {metric}: {best[metric]:g}")  # fmt: skip
            ax.legend(fontsize=7, loc="best")
        ax.set_xlabel(f"{metric} ({direction(metric)} is better)", fontsize=8)
        ax.set_ylabel(f"{fd_name} ({direction(fd_name)} is better)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.margins(x=0.2, y=0.12)  # room for the w labels inside the panel
    for ax, values in zip(axes.flat, against.values(), strict=True):  # once laid out
        x = np.asarray(values, float)
        ok = ~(np.isnan(x) | np.isnan(y))
        _label_points(ax, x[ok], y[ok], [f"{symbol}={v:g}" for v in w[ok]])
    if fd_name in best:
        fig.suptitle(f"best {symbol} for {fd_name}: {best[fd_name]:g}", fontsize=9)
    return _png(fig)


def metric_vs_step(column: str, runs: dict[str, dict[int, list[tuple[int, float]]]]) -> bytes:
    """One panel per model: a thin curve per seed, and with several seeds their mean with a
    band of ± one standard deviation (at the steps every seed has)."""
    n = len(runs)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    for ax, (model, seeds) in zip(axes.flat, runs.items(), strict=False):
        for seed, points in sorted(seeds.items()):
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, lw=0.8, alpha=0.6, label=f"seed {seed}")
        common = sorted(set.intersection(*(set(dict(p)) for p in seeds.values())))
        if len(seeds) > 1 and common:
            table = np.array([[dict(p)[s] for s in common] for p in seeds.values()])
            mean, std = table.mean(0), table.std(0, ddof=1)
            ax.plot(common, mean, c="k", lw=1.6, label="mean")
            ax.fill_between(common, mean - std, mean + std, color="k", alpha=0.15, lw=0)
        ax.set_title(textwrap.fill(model, 44), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        better = direction(column) or ("lower" if "fd_" in column else None)
        ax.set_ylabel(column + (f" ({better} is better)" if better else ""), fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return _png(fig)
