"""PNG plots shared by commands. matplotlib is imported lazily and always with the Agg backend."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import atomic_write_bytes
from .skeleton import Skeleton

SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "centre": "#2ca02c"}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 100) -> None:
    """Render to memory, then write atomically (no half-written PNG if interrupted)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
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
