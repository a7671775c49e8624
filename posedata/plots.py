"""PNG plots shared by commands. matplotlib is imported lazily and always with the Agg backend."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import atomic_write_bytes
from .skeleton import Skeleton

SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "centre": "#2ca02c"}


def keypoint_colors(sk: Skeleton) -> np.ndarray:
    """(K, 3) RGB uint8: the one colour rule of every drawing of keypoints (preview overlays, val
    and infer overlays). The skeleton file's `colors` where given, else the keypoint's side
    (SIDE_COLORS; the flip map's [left, right] order decides it), so left/right mistakes show."""
    out = np.zeros((sk.num_keypoints, 3), np.uint8)
    for i, k in enumerate(sk.keypoints):
        if k in sk.colors:
            out[i] = sk.colors[k]
        else:
            h = SIDE_COLORS[sk.side(i)].lstrip("#")
            out[i] = [int(h[j:j + 2], 16) for j in (0, 2, 4)]
    return out


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 100, tight: bool = True) -> None:
    """Render to memory, then write atomically (no half-written PNG if interrupted)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def tree_layout(sk: Skeleton) -> np.ndarray:
    """(K, 2) positions: depth from the root downwards, leaves spread across, left keypoints
    on the viewer's right as in a photo of a person facing the camera."""
    children: dict[int, list[int]] = {i: [] for i in range(sk.num_keypoints)}
    depth = {sk.root: 0}
    for li, known, new in sk.grouping_steps:
        if not sk.redundant[li] and new not in depth:
            children[known].append(new)
            depth[new] = depth[known] + 1
    for i in range(sk.num_keypoints):
        depth.setdefault(i, max(depth.values()) + 1)
    xs: dict[int, float] = {}
    counter = [0.0]

    def place(k: int) -> None:
        kids = sorted(children[k], key=lambda c: {"right": 0, "centre": 1, "left": 2}[sk.side(c)])
        if not kids:
            xs[k] = counter[0]
            counter[0] += 1
            return
        for c in kids:
            place(c)
        xs[k] = float(np.mean([xs[c] for c in kids]))

    place(sk.root)
    for i in range(sk.num_keypoints):
        if i not in xs:
            xs[i] = counter[0]
            counter[0] += 1
    return np.array([[xs[i], -depth[i]] for i in range(sk.num_keypoints)], dtype=float)


def plot_skeleton(sk: Skeleton, path: str | Path) -> None:
    """The skeleton graph: keypoints coloured by side, tree limbs solid, redundant limbs dashed,
    flip pairs as dotted arcs, limb index and PAF channels on each limb."""
    plt = pyplot()
    pos = tree_layout(sk)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * sk.num_keypoints), 6))
    for i, (a, b) in enumerate(sk.limbs):
        style = "--" if sk.redundant[i] else "-"
        ax.plot(*zip(pos[a], pos[b]), style, color="#555555", lw=1.5, zorder=1)
        mid = (pos[a] + pos[b]) / 2
        ax.text(mid[0], mid[1], f"L{i}", fontsize=7, color="#444444", ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    for a, b in sk.flip_pairs():
        pa, pb = pos[sk.index(a)], pos[sk.index(b)]
        ax.annotate("", xy=pb, xytext=pa, arrowprops=dict(arrowstyle="<->", ls=":", color="#999999",
                                                          connectionstyle="arc3,rad=0.3"))
    for i, k in enumerate(sk.keypoints):
        c = SIDE_COLORS[sk.side(i)]
        ax.scatter(*pos[i], s=120 if i == sk.root else 60, color=c, zorder=2,
                   edgecolors="black" if i == sk.root else "none")
        ax.text(pos[i][0], pos[i][1] + 0.15, f"{i}:{k}", fontsize=8, ha="center", va="bottom")
    for side, c in SIDE_COLORS.items():
        ax.scatter([], [], color=c, label=side)
    ax.plot([], [], "--", color="#555555", label="redundant limb")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{sk.name}: {sk.num_keypoints} keypoints, {sk.num_limbs} limbs, root {sk.keypoints[sk.root]}")
    ax.axis("off")
    save_figure(fig, path)


def draw_instance(ax, image_rgb: np.ndarray, pts: np.ndarray, lab: np.ndarray, sk: Skeleton,
                  labels: list[int] | None = None, title: str = "", names: bool = True) -> None:
    """An image crop with keypoints coloured by the side of the label they carry, names written
    beside them and limbs drawn. `labels[n]` is the keypoint index point n carries (default n)."""
    ax.imshow(image_rgb)
    labels = list(range(len(pts))) if labels is None else labels
    where = {lbl: n for n, lbl in enumerate(labels)}
    # one artist per kind (a line with gaps, one scatter): an artist per point made a plot of a
    # dozen instances take seconds
    seg = [(pts[na], pts[nb]) for a, b in sk.limbs
           if (na := where.get(a)) is not None and (nb := where.get(b)) is not None and lab[na] and lab[nb]]
    if seg:
        xy = np.concatenate([np.array([p, q, (np.nan, np.nan)]) for p, q in seg])
        ax.plot(xy[:, 0], xy[:, 1], "-", color="white", lw=1, alpha=0.7)
    shown = [n for n in range(len(labels)) if lab[n]]
    if shown:
        cols = [SIDE_COLORS[sk.side(labels[n])] for n in shown]
        ax.scatter(pts[shown, 0], pts[shown, 1], s=25, c=cols, edgecolors="white", linewidths=0.5, zorder=3)
        for n, c in zip(shown if names else [], cols, strict=False):
            ax.text(pts[n, 0] + 2, pts[n, 1], sk.keypoints[labels[n]], fontsize=6, color=c, zorder=4)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def plot_flip_instances(items: list[dict], sk: Skeleton, path: str | Path) -> None:
    """For each instance: the original crop and the flipped crop with the swap applied, side by side.
    After a right flip the left-coloured labels still sit on the body's left side."""
    plt = pyplot()
    n = max(len(items), 1)
    fig, axes = plt.subplots(n, 2, figsize=(7, 3.4 * n), squeeze=False)
    for row, it in enumerate(items):
        crop, pts, lab = it["crop"], it["points"], it["labelled"]
        w = crop.shape[1]
        # names only on the flipped panel, where the map moved them (the original shows sides by
        # colour): glyph rendering of every name twice was most of flipcheck's time
        draw_instance(axes[row, 0], crop[..., ::-1], pts, lab, sk, title=f"{it['title']}: original", names=False)
        fpts = pts.copy()
        fpts[:, 0] = w - 1 - fpts[:, 0]
        draw_instance(axes[row, 1], crop[:, ::-1, ::-1], fpts, lab, sk, labels=list(sk.flip),
                      title="flipped, labels swapped by the flip map")
    for side, c in SIDE_COLORS.items():
        axes[0, 1].scatter([], [], color=c, label=side)
    axes[0, 1].legend(loc="upper right", fontsize=7)
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.3 / (3.4 * n), bottom=0.01, hspace=0.15, wspace=0.03)
    save_figure(fig, path, tight=False)  # a tight bounding box renders the whole figure twice


def plot_side_statistics(stats: list[dict], path: str | Path) -> None:
    """Per flip pair (one row each, in one axes: a figure per pair took seconds to lay out), the
    horizontal offset of the left point from the right one (fraction of the instance's width): a
    consistent annotator gives one cluster per facing direction; points against the pair's majority
    are red, and the row says how many."""
    plt = pyplot()
    n = max(len(stats), 1)
    longest = max((len(f"{st['left']} / {st['right']}") for st in stats), default=10) + 42
    left_in = 0.05 * longest  # the row labels at 6 pt, laid out by hand: a tight bounding box draws twice
    w, h = 4.5 + left_in, 0.9 + 0.32 * n
    fig, ax = plt.subplots(figsize=(w, h))
    fig.subplots_adjust(left=left_in / w, right=0.97, top=1 - 0.15 / h, bottom=0.6 / h)
    rng = np.random.default_rng(0)
    labels = []
    for row, st in enumerate(stats):
        off = np.asarray(st["offsets"], dtype=float)
        share = st["left_of_right"]
        against = np.zeros(len(off), bool)
        if len(off):
            majority = np.sign(np.median(off)) or 1.0
            against = np.sign(off) == -majority
            y = row + rng.uniform(-0.25, 0.25, len(off))  # jitter: many instances stay visible
            ax.scatter(off[~against], y[~against], s=6, color="#555555", lw=0)
            ax.scatter(off[against], y[against], s=10, color="#d62728", lw=0)
        labels.append(f"{st['left']} / {st['right']}: left of right in "
                      f"{'n/a' if not np.isfinite(share) else f'{100 * share:.0f}%'} of {st['n']}, "
                      f"{int(against.sum())} against majority")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(np.arange(len(stats)))
    ax.set_yticklabels(labels, fontsize=6)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel("(x_left - x_right) / width; red: against the pair's majority", fontsize=7)
    ax.tick_params(labelsize=6)
    save_figure(fig, path, tight=False)


def plot_orientation_scores(verdict, path: str | Path) -> None:
    """Per keypoint: how far the data are from mirror symmetry under the flip map (mean z^2 of the
    keypoint's features; about 1 is noise), blamed keypoints in red, with the verdict."""
    plt = pyplot()
    t = verdict.test
    names = t.keypoints if t is not None else []
    k = max(len(names), 1)
    import textwrap

    title = (textwrap.fill(f"{verdict.verdict} on {verdict.n_instances} instances: {verdict.reason}", 110)
             + "\nred: blamed (the randomisation test decides; bars only rank the keypoints)")
    # fixed margins instead of a tight bounding box, which draws the figure twice
    top, bottom = 0.25 + 0.12 * (title.count("\n") + 1), 0.09 * max((len(n) for n in names), default=4) + 0.3
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * k), 2.4 + top + bottom))
    h = 2.4 + top + bottom
    fig.subplots_adjust(left=0.8 / max(6, 0.45 * k), right=0.98, top=1 - top / h, bottom=bottom / h)
    if t is not None and len(names):
        x = np.arange(len(names))
        colors = ["#d62728" if n in t.blamed else "#1f77b4" for n in names]
        ax.bar(x, np.nan_to_num(t.scores), color=colors)
        ax.axhline(1.0, color="black", ls="--", lw=0.8, label="noise level (z^2 = 1)")
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("mean z^2 of its mirror features")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no data-level test (flip augmentation off)", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
    ax.set_title(title, fontsize=7)
    save_figure(fig, path, tight=False)
