"""trainer.data: a batch fetched through __getitems__ (targets rendered once per batch) equals the
same samples fetched one by one, and the DataLoader uses that path."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from posedata import labels as L
from posedata import skeleton as skmod
from posedata.augment import AugmentConfig
from posedata.errors import InputError

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from trainer.data import PoseDataset

    root = tmp_path_factory.mktemp("data")
    sk = skmod.resolve("openpose18")
    rng = np.random.default_rng(4)
    h, w = 240, 320
    n_img, per_img = 3, 3
    kps, bboxes, names = [], [], []
    for i in range(n_img):
        cv2.imwrite(str(root / f"im{i}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        names.append(f"im{i}.png")
        for _ in range(per_img):
            c = rng.uniform([60, 60], [w - 60, h - 60])
            kp = np.concatenate([c + rng.uniform(-50, 50, (18, 2)), rng.choice([0, 1, 1, 2], (18, 1))], 1)
            kps.append(kp)
            x0, y0 = kp[:, :2].min(0)
            x1, y1 = kp[:, :2].max(0)
            bboxes.append([x0, y0, x1 - x0, y1 - y0])
    m = n_img * per_img
    lb = L.Labels(
        fingerprint=sk.fingerprint, skeleton_name=sk.name, keypoint_names=list(sk.keypoints), settings={},
        image_ids=np.arange(1, n_img + 1), file_names=names, widths=np.full(n_img, w), heights=np.full(n_img, h),
        crowd=[[], [[[10.0, 10.0, 60.0, 10.0, 60.0, 50.0, 10.0, 50.0]]], []],
        inst_image=np.repeat(np.arange(n_img), per_img), inst_ids=np.arange(m) + 10,
        keypoints=np.array(kps, dtype=np.float32), bbox=np.array(bboxes, dtype=np.float32),
        area=np.full(m, 5000, np.float32), num_keypoints=np.full(m, 12), samples=np.arange(0, m, 2),
    )
    L.save(lb, root / "labels.posedata")
    return PoseDataset(root / "labels.posedata", root, sk, AugmentConfig(crop_w=128, crop_h=96), seed=3)


def test_getitems_equals_getitem(dataset):
    keys = [(1, i) for i in range(len(dataset))] + [(2, 0), 1]
    batch = dataset.__getitems__(keys)
    assert set(batch) == {"image", "heatmaps", "pafs", "mask"}
    for j, key in enumerate(keys):
        one = dataset[key]
        assert set(one) == set(batch)
        for name in one:
            assert batch[name].shape[0] == len(keys)
            assert torch.equal(batch[name][j], one[name]), (key, name)
    assert batch["heatmaps"].shape[1:] == (19, 12, 16) and batch["pafs"].shape[1:] == (38, 12, 16)
    assert float(batch["heatmaps"][:, :-1].max()) > 0.5  # something was drawn
    assert batch["image"].dtype == torch.float32 and batch["image"].shape[1:] == (3, 96, 128)


def test_loader_batches_equal_items(dataset, monkeypatch):
    import posedata.augment as A
    from trainer.data import make_loader

    calls = []
    real = A.render_targets_batch
    monkeypatch.setattr(A, "render_targets_batch", lambda points, *a: (calls.append(len(points)), real(points, *a))[1])
    loader, sampler = make_loader(dataset, batch_size=3, workers=0, seed=1)
    sampler.set_position(0, 0)
    keys = list(sampler)
    got = list(loader)
    assert calls == [b["image"].shape[0] for b in got]  # one render per batch
    assert sum(b["heatmaps"].shape[0] for b in got) == len(keys)
    flat = {name: torch.cat([b[name] for b in got]) for name in got[0]}
    for j, key in enumerate(keys):
        one = dataset[key]
        for name in one:
            assert torch.equal(flat[name][j], one[name])


def test_loader_recycles_target_memory_only_of_dead_batches(dataset, monkeypatch):
    """With every output size recycled (the default recycles the reference batch of 80, 38 MB),
    the training loop's batches still equal their items: a batch the loop still holds is never
    overwritten by the next, and a dropped batch's memory is reused."""
    import posedata.targets as T
    from trainer.data import make_loader

    monkeypatch.setattr(T, "_OUTPUTS", T._OutputPool(0))
    loader, sampler = make_loader(dataset, batch_size=1, workers=0, seed=1)
    sampler.set_position(0, 0)
    keys = list(sampler)
    held, addresses = [], []
    for j, batch in enumerate(loader):  # the loop holds `batch` while the next one is made
        held.append(batch["pafs"][0, 2:])  # and the first batch stays referenced by this view
        addresses.append(batch["heatmaps"].data_ptr())
        one = dataset[keys[j]]
        for name in one:
            assert torch.equal(batch[name][0], one[name])
        if j > 0:
            held.pop()
    assert len(set(addresses)) < len(addresses)  # recycled
    assert addresses[0] not in addresses[1:]  # ... but never while referenced
    assert torch.equal(held[0], dataset[keys[0]]["pafs"][2:])


def test_prefetch_makes_the_next_item_while_the_caller_works():
    """Prefetch hands over the source's items in order, and item k+1 is made on another thread
    while the caller still works on item k (the training step), not when the caller asks."""
    import threading
    import time

    from trainer.data import Prefetch

    made: list[tuple[int, float, str]] = []

    def source():
        for k in range(4):
            made.append((k, time.perf_counter(), threading.current_thread().name))
            yield k

    asked = []
    items = Prefetch(source())
    for k in items:
        asked.append((k, time.perf_counter()))
        time.sleep(0.05)  # the step
    assert [k for k, _ in asked] == [0, 1, 2, 3]
    assert all(name != threading.current_thread().name for _, _, name in made)
    # item k+1 was made before the caller finished step k
    assert all(made[k + 1][1] < asked[k][1] + 0.05 for k in range(3))
    items.close()


def test_prefetch_raises_the_source_error_in_order_and_close_stops_the_source():
    from trainer.data import Prefetch

    def failing():
        yield 1
        raise InputError("image not found", file="im9.png")

    items = Prefetch(failing())
    assert next(items) == 1
    with pytest.raises(InputError, match="image not found"):
        next(items)
    with pytest.raises(StopIteration):
        next(items)

    closed = []

    def endless():
        try:
            k = 0
            while True:
                yield k
                k += 1
        finally:
            closed.append(True)

    items = Prefetch(endless())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert closed == [True] and not items._thread.is_alive()
