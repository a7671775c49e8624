"""Pictures of exactly what the network is asked to learn: the trainer's own samples and targets.

Nothing here renders targets or augments: the samples come from posedata.augment.training_sample,
the same function the trainer's Dataset calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .labels import Labels
from .plots import keypoint_colors, pyplot, save_figure
from .skeleton import Skeleton

FIXED_PANELS = ("crop", "heatmaps", "pafs", "mask", "background")


def heatmap_overlay(heatmaps: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """(h, w, 3) image: each keypoint channel in its colour, the strongest channel wins per cell."""
    hm = heatmaps[:-1]
    k = np.argmax(hm, axis=0)
    v = np.max(hm, axis=0)
    return colors[k] * v[..., None]


def paf_color_wheel(pafs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 4) RGBA: direction of the strongest limb field as hue, magnitude as opacity;
    plus the (2, h, w) vectors drawn."""
    l2 = pafs.reshape(-1, 2, *pafs.shape[1:])
    mag = np.hypot(l2[:, 0], l2[:, 1])
    best = np.argmax(mag, axis=0)
    vec = np.take_along_axis(l2, best[None, None], axis=0)[0]
    m = np.take_along_axis(mag, best[None], axis=0)[0]
    hue = (np.arctan2(vec[1], vec[0]) / (2 * np.pi)) % 1.0
    hsv = np.stack([hue, np.ones_like(hue), np.ones_like(hue)], -1)
    import matplotlib.colors as mcolors

    rgb = mcolors.hsv_to_rgb(hsv)
    return np.concatenate([rgb, np.clip(m, 0, 1)[..., None]], -1), vec


@dataclass
class PreviewItem:
    index: int
    path: Path
    panels: int
    instances: int
    flipped: bool


def draw_sample(sample, sk: Skeleton, title: str, path: Path, stride: int) -> int:
    """One PNG for one training sample; returns the number of panels drawn."""
    plt = pyplot()
    k, n_limbs = sk.num_keypoints, sk.num_limbs
    cols = 6
    hm_rows = (k + cols - 1) // cols
    grid_rows = hm_rows + (n_limbs + cols - 1) // cols
    fig = plt.figure(figsize=(2.6 * cols, 2.8 * (1 + grid_rows)))
    gs = fig.add_gridspec(1 + grid_rows, cols)
    img = sample.image[..., ::-1]
    h, w = img.shape[:2]
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    colors = keypoint_colors(sk) / 255.0
    dim = (img.astype(np.float32) * 0.45).astype(np.uint8)
    panels = 0

    _input_panel(fig.add_subplot(gs[0, 0]), sample, sk, colors)
    panels += 1

    ax = fig.add_subplot(gs[0, 1])
    ax.imshow(dim)
    ax.imshow(heatmap_overlay(sample.heatmaps, colors), extent=extent, alpha=0.75, interpolation="nearest")
    ax.set_title("all heatmaps", fontsize=7)
    panels += 1

    _paf_panel(fig.add_subplot(gs[0, 2]), sample, dim, extent, stride)
    panels += 1

    ax = fig.add_subplot(gs[0, 3])
    ax.imshow(img)
    ax.imshow(np.where(sample.mask[..., None] < 0.5, [1.0, 0, 0, 0.55], [0, 0, 0, 0]), extent=extent, interpolation="nearest")
    ax.set_title(f"loss mask (red = ignored, {100 * (sample.mask < 0.5).mean():.1f}%)", fontsize=7)
    panels += 1

    ax = fig.add_subplot(gs[0, 4])
    ax.imshow(sample.heatmaps[-1], cmap="gray", vmin=0, vmax=1)
    ax.set_title("background channel", fontsize=7)
    panels += 1

    fig.add_subplot(gs[0, 5]).axis("off")
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])

    panels += _channel_grids(fig, gs, hm_rows, sample, sk, cols)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=80, tight=False)
    return panels


def _input_panel(ax: Any, sample: Any, sk: Skeleton, colors: np.ndarray) -> None:
    """The network input with its keypoints (o visible, x occluded) and limbs."""
    img = sample.image[..., ::-1]
    h, w = img.shape[:2]
    ax.imshow(img)
    kp = sample.keypoints
    for a, b in sk.limbs:
        for inst in kp:
            if inst[a, 2] <= 1 and inst[b, 2] <= 1:
                ax.plot([inst[a, 0], inst[b, 0]], [inst[a, 1], inst[b, 1]], "-", color="white", lw=1)
    for inst in kp:
        for i in range(sk.num_keypoints):
            if inst[i, 2] <= 1:
                ax.scatter(inst[i, 0], inst[i, 1], s=14, color=colors[i],
                           marker="o" if inst[i, 2] == 1 else "x", zorder=3)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_title(f"network input{' (flipped)' if sample.flipped else ''}\no visible, x occluded", fontsize=7)


def _paf_panel(ax: Any, sample: Any, dim: np.ndarray, extent: tuple, stride: int) -> None:
    """Every PAF at once: hue for direction, opacity for magnitude, arrows where strong."""
    mh, mw = sample.heatmaps.shape[1:]
    ax.imshow(dim)
    rgba, vec = paf_color_wheel(sample.pafs)
    ax.imshow(rgba, extent=extent, interpolation="nearest")
    step = max(1, min(mh, mw) // 16)
    ys, xs = np.mgrid[0:mh:step, 0:mw:step]
    u, v = vec[:, ::step, ::step]
    strong = np.hypot(u, v) > 0.1
    ax.quiver(xs[strong] * stride + stride / 2 - 0.5, ys[strong] * stride + stride / 2 - 0.5, u[strong], v[strong],
              color="white", angles="xy", scale_units="xy", scale=1 / (stride * step * 0.8), width=0.006)
    ax.set_title("PAFs: hue = direction, opacity = magnitude", fontsize=7)


def _channel_grids(fig: Any, gs: Any, hm_rows: int, sample: Any, sk: Skeleton, cols: int) -> int:
    """One mosaic of the heatmap channels and one of the PAF channels; returns the tiles drawn."""
    import matplotlib

    k, n_limbs = sk.num_keypoints, sk.num_limbs
    cmap = matplotlib.colormaps["magma"]
    hm_tiles = [cmap(np.clip(sample.heatmaps[i], 0, 1))[..., :3] for i in range(k)]
    hm_names = [f"{i}: {sk.keypoints[i]}" for i in range(k)]
    paf_tiles = [paf_color_wheel(sample.pafs[2 * li:2 * li + 2])[0] for li in range(n_limbs)]
    paf_tiles = [t[..., :3] * t[..., 3:] for t in paf_tiles]
    paf_names = [f"L{li}: {'->'.join(sk.limb_names(li))}" for li in range(n_limbs)]
    ax = fig.add_subplot(gs[1:1 + hm_rows, :])
    ax.imshow(tile_grid(hm_tiles, hm_names, cols))
    ax.set_title("heatmap per keypoint", fontsize=8)
    ax.axis("off")
    if n_limbs:
        ax = fig.add_subplot(gs[1 + hm_rows:, :])
        ax.imshow(tile_grid(paf_tiles, paf_names, cols))
        ax.set_title("PAF per limb (hue = direction)", fontsize=8)
        ax.axis("off")
    return k + n_limbs


def tile_grid(tiles: list[np.ndarray], names: list[str], cols: int, min_width: int = 132) -> np.ndarray:
    """One RGB mosaic of map-sized tiles, each upsampled and captioned (one image, not K axes:
    matplotlib spends seconds per figure on dozens of axes)."""
    import cv2

    h, w = tiles[0].shape[:2]
    scale = max(1, -(-min_width // w))  # whole cells, wide enough for a readable caption
    th, tw, cap = h * scale, w * scale, 14
    rows = (len(tiles) + cols - 1) // cols
    out = np.full((rows * (th + cap + 4), cols * (tw + 4), 3), 255, np.uint8)
    for n, (t, name) in enumerate(zip(tiles, names)):
        r, c = divmod(n, cols)
        y, x = r * (th + cap + 4), c * (tw + 4)
        tile = cv2.resize(t.astype(np.float32), (tw, th), interpolation=cv2.INTER_NEAREST)
        out[y + cap:y + cap + th, x:x + tw] = (np.clip(tile, 0, 1) * 255).astype(np.uint8)
        cv2.putText(out, name[: max(4, tw // 6)], (x + 1, y + cap - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def thumbnail(sample, sk: Skeleton) -> np.ndarray:
    """(H, 3W, 3) RGB uint8: the input, the heatmaps over it and the PAF colour wheel over it."""
    import cv2

    img = sample.image[..., ::-1].astype(np.float32) / 255.0
    h, w = img.shape[:2]
    hm = cv2.resize(heatmap_overlay(sample.heatmaps, keypoint_colors(sk) / 255.0).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    rgba, _ = paf_color_wheel(sample.pafs)
    rgba = cv2.resize(rgba.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    paf = img * 0.45 * (1 - rgba[..., 3:]) + rgba[..., :3] * rgba[..., 3:]
    return (np.clip(np.hstack([img, np.clip(img * 0.45 + hm, 0, 1), paf]), 0, 1) * 255).astype(np.uint8)


def contact_sheet(thumbs: list[np.ndarray], titles: list[str], out: Path, cols: int = 2) -> None:
    """index.png: every preview as input | heatmaps | PAFs."""
    plt = pyplot()
    rows = max((len(thumbs) + cols - 1) // cols, 1)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, t, title in zip(axes.flat, thumbs, titles):
        ax.imshow(t)
        ax.set_title(title, fontsize=7)
    save_figure(fig, out, dpi=80)


def preview(labels: Labels, sk: Skeleton, images_root: Path, out_dir: Path, n: int = 16, seed: int = 0,
            augment: bool = True, cfg=None, progress=None) -> list[PreviewItem]:
    """Draw n training samples (chosen with the seed) as the trainer would produce them."""
    from .augment import AugmentConfig, training_sample

    cfg = cfg or AugmentConfig()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(labels.num_samples, size=min(n, labels.num_samples), replace=False) if labels.num_samples else []
    # every sample is made before the first PNG is written: a missing or corrupt image fails the
    # command with nothing written, not after half the previews
    samples = [training_sample(labels, int(i), images_root, sk, cfg, np.random.default_rng([seed, int(i)]),
                               augment=augment) for i in chosen]
    out_dir.mkdir(parents=True, exist_ok=True)
    items, thumbs = [], []
    for j, (i, s) in enumerate(zip(chosen, samples)):
        rec = labels.sample(int(i))
        path = out_dir / f"sample_{j:03d}_{Path(rec['file_name']).stem}.png"
        title = (f"sample {int(i)}: {rec['file_name']} (image {rec['image_id']}), {len(rec['instances'])} instance(s), "
                 f"{'augmented' if augment else 'no augmentation'}, seed {seed}")
        panels = draw_sample(s, sk, title, path, cfg.stride)
        items.append(PreviewItem(int(i), path, panels, len(rec["instances"]), bool(s.flipped)))
        thumbs.append(thumbnail(s, sk))
        if progress:
            progress(j + 1, len(chosen))
    if items:
        contact_sheet(thumbs, [it.path.name for it in items], out_dir / "index.png")
    return items
