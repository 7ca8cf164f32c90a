"""Every figure the project draws. Each function returns a Figure; callers save
it with :func:`digitlab.repro.save_figure` (scripts never call ``plt.show``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 10,
               cmap: str = "gray_r", suptitle: str | None = None, cell: float = 1.0,
               vmin: float | None = None, vmax: float | None = None) -> Figure:
    """Draw images (N, H, W) on a grid, optionally titled one by one."""
    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    aspect = images.shape[1] / images.shape[2]
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * aspect * nrows + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def learning_curves(histories: Mapping[str, object], metric: str = "both",
                    title: str | None = None) -> Figure:
    """Train (dashed) and validation (solid) loss and accuracy per epoch.

    ``histories`` maps a run name to a :class:`digitlab.engine.fit.History`
    (or any object/dict with ``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``).
    """
    panels = ["loss", "acc"] if metric == "both" else [metric]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=True):
        for i, (name, hist) in enumerate(histories.items()):
            get = hist.get if isinstance(hist, Mapping) else lambda k, h=hist: getattr(h, k)
            color = f"C{i % 10}"
            train, val = get(f"train_{panel}"), get(f"val_{panel}")
            epochs = np.arange(1, len(train) + 1)
            ax.plot(epochs, train, "--", color=color, alpha=0.7, label=f"{name} (train)")
            if val:
                ax.plot(epochs[:len(val)], val, "-", color=color, label=f"{name} (validation)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss" if panel == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(cm: np.ndarray, labels: Sequence[str] | None = None,
                     title: str = "Confusion matrix", xlabel: str = "predicted",
                     ylabel: str = "true", normalize: bool = False) -> Figure:
    """Heatmap of a confusion (or contingency) matrix with the counts written in."""
    cm = np.asarray(cm)
    shown = cm / cm.sum(axis=1, keepdims=True).clip(min=1) if normalize else cm
    texts = ([[f"{v:.2f}" for v in row] for row in shown] if normalize
             else [[str(c) for c in row] for row in cm])
    rows = labels if labels is not None else range(cm.shape[0])
    cols = labels if labels is not None else range(cm.shape[1])
    fig, ax = plt.subplots(figsize=(0.5 * cm.shape[1] + 2.5, 0.5 * cm.shape[0] + 2))
    _annotated_image(fig, ax, shown, texts, "Blues", fontsize=7)
    ax.set_xticks(range(cm.shape[1]), cols)
    ax.set_yticks(range(cm.shape[0]), rows)
    return _finish(fig, ax, title, xlabel, ylabel)


def _annotated_image(fig, ax, values: np.ndarray, texts, cmap: str, fontsize: int) -> None:
    """``values`` as a coloured grid with a colour bar and ``texts[i][j]`` in each cell,
    in black or white, whichever reads better on that cell's colour."""
    im = ax.imshow(values, cmap=cmap)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for (i, j), value in np.ndenumerate(values):
        red, green, blue, _ = im.cmap(im.norm(value))
        light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5  # perceived brightness
        ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=fontsize,
                color="black" if light else "white")


def _finish(fig, ax, title: str, xlabel: str, ylabel: str) -> Figure:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def bar_chart(values: Mapping[str, float], title: str, ylabel: str = "accuracy",
              errors: Mapping[str, float] | None = None, fmt: str = "{:.3f}",
              ylim: tuple[float, float] | None = None) -> Figure:
    """Bars with their values written on top (e.g. a ladder of models); ``ylim`` zooms
    in on close values."""
    names = list(values)
    heights = [values[n] for n in names]
    yerr = [errors.get(n, 0.0) for n in names] if errors else None
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names)), 3.6))
    bars = ax.bar(names, heights, yerr=yerr, capsize=4, color=[f"C{i}" for i in range(len(names))])
    tops = [h + (e or 0.0) for h, e in zip(heights, yerr or [0.0] * len(heights), strict=True)]
    for bar, height, top in zip(bars, heights, tops, strict=True):
        ax.annotate(fmt.format(height), (bar.get_x() + bar.get_width() / 2, top),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    # Labels already wrapped onto several lines stay level: tilted, they run into each other.
    ax.tick_params(axis="x", rotation=0 if any("\n" in n for n in names) else 20)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def heatmap(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str],
            title: str, xlabel: str = "", ylabel: str = "", fmt: str = "{:.3f}",
            cmap: str = "viridis") -> Figure:
    """A labelled heatmap of real values (e.g. a train-noise × test-noise matrix)."""
    matrix = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(1.3 * len(col_labels) + 2.5, 0.9 * len(row_labels) + 1.8))
    _annotated_image(fig, ax, matrix, [[fmt.format(v) for v in row] for row in matrix], cmap,
                     fontsize=8)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=20)
    ax.set_yticks(range(len(row_labels)), row_labels)
    return _finish(fig, ax, title, xlabel, ylabel)


def line_plot(x: np.ndarray, series: Mapping[str, np.ndarray], title: str, xlabel: str,
              ylabel: str, errors: Mapping[str, np.ndarray] | None = None, logx: bool = False,
              marks: Mapping[str, float] | None = None, hlines: Mapping[str, float] | None = None,
              ) -> Figure:
    """One or more curves over ``x`` (optional ±error bands), with labelled vertical
    (``marks``: label -> x) and horizontal (``hlines``: label -> y) reference lines."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, (name, y) in enumerate(series.items()):
        y = np.asarray(y, dtype=float)
        ax.plot(x, y, "-o" if len(x) <= 30 else "-", ms=3, color=f"C{i}", label=name)
        if errors and name in errors:
            err = np.asarray(errors[name], dtype=float)
            ax.fill_between(x, y - err, y + err, color=f"C{i}", alpha=0.2)
    for j, (name, value) in enumerate((marks or {}).items()):
        ax.axvline(value, ls="--", color=f"C{j + len(series)}", label=name)
    for j, (name, value) in enumerate((hlines or {}).items()):
        ax.axhline(value, ls=":", color=f"C{j + len(series) + len(marks or {})}", label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def histogram(values: np.ndarray, title: str, xlabel: str, bins: int | Sequence[float] = 32,
              log: bool = False) -> Figure:
    """Histogram of a flat array of values (e.g. every pixel intensity of a data set)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.hist(np.ravel(values), bins=bins, color="C0", edgecolor="white", log=log)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count (log scale)" if log else "count")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def scatter_2d(points: np.ndarray, labels: np.ndarray, title: str, xlabel: str = "component 1",
               ylabel: str = "component 2") -> Figure:
    """2-D points coloured by integer label, one legend entry per label."""
    points, labels = np.asarray(points), np.asarray(labels)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for i, label in enumerate(np.unique(labels)):
        mask = labels == label
        ax.scatter(points[mask, 0], points[mask, 1], s=8, alpha=0.7, color=f"C{i % 10}",
                   label=str(label))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(title="label", fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def probability_examples(images: np.ndarray, probabilities: np.ndarray, labels: np.ndarray,
                         title: str | None = None, vmax: float = 255) -> Figure:
    """Each image (intensities 0 to ``vmax``) above a bar chart of its predicted class
    probabilities; the true class bar is green, a wrong top prediction red."""
    images, probabilities = np.asarray(images), np.asarray(probabilities)
    n, n_classes = probabilities.shape
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 3.2), squeeze=False,
                             gridspec_kw={"height_ratios": [1.2, 1]})
    for i in range(n):
        top = int(probabilities[i].argmax())
        axes[0, i].imshow(images[i], cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
        axes[0, i].set_title(f"true {labels[i]}\npred {top} ({probabilities[i, top]:.2f})",
                             fontsize=7)
        axes[0, i].axis("off")
        colors = ["C7"] * n_classes
        colors[top] = "C3"
        colors[int(labels[i])] = "C2"
        axes[1, i].bar(range(n_classes), probabilities[i], color=colors)
        axes[1, i].set_ylim(0, 1)
        axes[1, i].set_xticks(range(n_classes), [str(c) for c in range(n_classes)], fontsize=5)
        axes[1, i].tick_params(axis="y", labelsize=6, labelleft=i == 0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def signed_image_grid(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 10,
                      suptitle: str | None = None, cell: float = 1.0) -> Figure:
    """Images with positive and negative values (weights, filters) on a diverging scale
    centred on zero: red positive, blue negative, white zero."""
    limit = float(np.abs(images).max()) or 1.0
    return image_grid(images, titles=titles, ncols=ncols, cmap="RdBu_r", suptitle=suptitle,
                      cell=cell, vmin=-limit, vmax=limit)


def feature_maps_grid(image: np.ndarray, maps: Mapping[str, np.ndarray], max_channels: int = 8,
                      title: str | None = None) -> Figure:
    """One digit (left) and, one row per layer, the first ``max_channels`` feature maps
    ``(channels, height, width)`` that each layer computed for it."""
    nrows, ncols = max(1, len(maps)), max_channels + 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.2 * nrows + 0.4),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(np.asarray(image).squeeze(), cmap="gray_r", interpolation="nearest")
    axes[0, 0].set_title("input", fontsize=8)
    for row, (name, fmap) in enumerate(maps.items()):
        for col in range(min(max_channels, len(fmap))):
            ax = axes[row, col + 1]
            ax.imshow(fmap[col], cmap="viridis", interpolation="nearest")
            if col == 0:
                ax.set_title(f"{name} {fmap.shape[1]}x{fmap.shape[2]}", fontsize=7, loc="left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def overlaid_histograms(series: Mapping[str, np.ndarray], title: str, xlabel: str,
                        bins: int = 40, marks: Mapping[str, float] | None = None) -> Figure:
    """Normalised histograms of several samples on shared bins, to compare distributions."""
    flat = {name: np.ravel(v) for name, v in series.items()}
    edges = np.histogram_bin_edges(np.concatenate(list(flat.values())), bins=bins)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, (name, v) in enumerate(flat.items()):
        ax.hist(v, bins=edges, density=True, alpha=0.5, color=f"C{i}",
                label=f"{name} (n={len(v)})")
    for j, (name, value) in enumerate((marks or {}).items()):
        ax.axvline(value, ls="--", color=f"C{j + len(flat)}", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def image_mosaic(images: np.ndarray, ncols: int = 10, title: str | None = None,
                 row_labels: Sequence[str] | None = None, cmap: str = "gray_r",
                 cell: float = 0.6, gap: int = 2) -> Figure:
    """Many small images tiled into one picture (a single ``imshow``: fast for hundreds)."""
    images = np.asarray(images)
    n, h, w = images.shape
    nrows = int(np.ceil(n / ncols))
    canvas = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    fig, ax = plt.subplots(figsize=(cell * ncols + (0.6 if row_labels else 0.2),
                                    cell * nrows * h / w + (0.5 if title else 0.2)))
    colormap = plt.get_cmap(cmap).with_extremes(bad="white")  # the gaps between images
    ax.imshow(canvas, cmap=colormap, interpolation="nearest")
    ax.set_xticks([])
    if row_labels is not None:
        ax.set_yticks([r * (h + gap) + h / 2 for r in range(len(row_labels))], row_labels)
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def grouped_bar_chart(series: Mapping[str, Sequence[float]], categories: Sequence[str],
                      title: str, xlabel: str = "", ylabel: str = "count") -> Figure:
    """Side-by-side bars: one group per category, one bar (colour) per series."""
    names = list(series)
    width = 0.8 / max(1, len(names))
    positions = np.arange(len(categories))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(categories) + 1.5), 3.4))
    for i, name in enumerate(names):
        ax.bar(positions + (i - (len(names) - 1) / 2) * width, series[name], width,
               label=name, color=f"C{i % 10}")
    ax.set_xticks(positions, [str(c) for c in categories])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def journal_curves(rows: Sequence[Mapping]) -> Figure:
    """Test accuracy per epoch of each published experiment (mean over seeds, min-max
    band) with the journal's number as a dotted line (``digitlab.mnist.journal.report``)."""
    published = [row for row in rows if row.get("published") is not None]
    ncols = min(3, max(1, len(published)))
    nrows = max(1, -(-len(published) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, published, strict=False):
        curves = np.array([run["test_acc"] for run in row["runs"]], dtype=float) * 100
        epochs = np.arange(1, curves.shape[1] + 1)
        ax.plot(epochs, curves.mean(0), "-o", ms=3, label=f"ours ({len(curves)} seeds)")
        ax.fill_between(epochs, curves.min(0), curves.max(0), alpha=0.25)
        ax.axhline(row["published"] * 100, ls=":", color="C3", label="journal")
        ax.set_ylim(max(curves.min(), row["published"] * 100 - 1.5), 100)
        ax.set_title(row["label"], fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(published):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
