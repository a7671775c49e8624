"""A torch Dataset over a posedata label file.

Decoding, augmentation, crowd masks and target rendering are posedata's own functions
(`posedata.augment.training_sample`, which renders with `posedata.targets`); this module only
turns their NumPy arrays into tensors and decides the random stream.

Reproducibility: the augmentation of a sample is drawn from its own generator seeded by
(run seed, epoch, sample index). It therefore does not depend on the number of loader workers,
on which rank of a distributed run draws it, or on whether the run was resumed half-way through
an epoch. Worker processes additionally seed the global NumPy / Python / torch generators from
the loader's seeded generator, so any library that reaches for a global generator is
deterministic too.
"""
from __future__ import annotations

import math
import queue
import random
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from posedata.errors import InputError


def check_fingerprint(labels, skeleton, labels_file: str | None = None) -> None:
    """Refuse a label file made for another skeleton, naming both."""
    from posedata.skeleton import require_fingerprint

    require_fingerprint("label file", labels.skeleton_name, labels.fingerprint, skeleton, labels_file,
                        "re-import the data with this skeleton")


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


class PoseDataset(Dataset):
    """Items are dicts of tensors: image (3, H, W) float32, heatmaps (K+1, h, w), pafs (2L, h, w),
    mask (h, w) (0 in crowd regions and padding that must not count).

    Index with an int (epoch 0) or with (epoch, index) pairs as EpochSampler yields them."""

    def __init__(self, labels_path: str | Path, images_root: str | Path, skeleton, augment_config: Any,
                 seed: int = 0, augment: bool = True):
        from posedata import labels as L

        self.labels_path = str(labels_path)
        self.labels = L.load(labels_path)
        check_fingerprint(self.labels, skeleton, self.labels_path)
        if self.labels.num_samples == 0:
            raise InputError("label file holds no training samples", file=self.labels_path)
        self.images_root = Path(images_root)
        if not self.images_root.is_dir():
            raise InputError("images folder not found", file=str(images_root))
        self.skeleton = skeleton
        self.config = augment_config
        self.seed = int(seed)
        self.augment = augment
        self.scratch = None

    def __len__(self) -> int:
        return self.labels.num_samples

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        from posedata.augment import training_sample

        index, rng = self._draw(key)
        s = training_sample(self.labels, index, self.images_root, self.skeleton, self.config, rng,
                            augment=self.augment, scratch=self._scratch())
        return self._item(s)  # before the scratch's next use: s.crop is its buffer

    def __getitems__(self, keys: list) -> dict[str, torch.Tensor]:
        """One batch (the DataLoader calls this with a batch's keys), already stacked: item j of
        each tensor is exactly what __getitem__(keys[j]) makes. posedata.augment.training_batch
        writes every network input straight into the batch array, renders the whole batch's
        targets in one call and reuses one decode / crop buffer, which together cost about a
        third less CPU per sample than making the items one by one (bench/README.md "augment").
        make_loader's collate_fn passes the stacked batch through."""
        from posedata.augment import training_batch

        b = training_batch(self.labels, [self._draw(key) for key in keys], self.images_root, self.skeleton, self.config,
                           augment=self.augment, scratch=self._scratch())
        return {"image": torch.from_numpy(b.images), "heatmaps": torch.from_numpy(b.heatmaps),
                "pafs": torch.from_numpy(b.pafs), "mask": torch.from_numpy(b.masks)}

    def _draw(self, key: int | tuple[int, int]) -> tuple[int, np.random.Generator]:
        """(record index, its generator) for an int (epoch 0) or an (epoch, index) key."""
        epoch, index = (0, key) if isinstance(key, int) else key
        return int(index), sample_rng(self.seed, int(epoch), int(index))

    def _scratch(self):
        # made on first use; each loader worker (a copy of the dataset) then has its own
        if self.scratch is None:
            from posedata.augment import Scratch

            self.scratch = Scratch()
        return self.scratch

    @staticmethod
    def _item(s) -> dict[str, torch.Tensor]:
        from posedata.augment import to_network_input

        return {
            "image": torch.from_numpy(to_network_input(s.crop)),
            "heatmaps": torch.from_numpy(np.ascontiguousarray(s.heatmaps, dtype=np.float32)),
            "pafs": torch.from_numpy(np.ascontiguousarray(s.pafs, dtype=np.float32)),
            "mask": torch.from_numpy(np.ascontiguousarray(s.mask, dtype=np.float32)),
        }


def stacked(batch: Any) -> Any:
    """The loader's collate_fn: a batch from PoseDataset.__getitems__ is already stacked."""
    if isinstance(batch, dict):
        return batch
    return torch.utils.data.default_collate(batch)


class EpochSampler(DistributedSampler):
    """DistributedSampler (per-epoch seeded shuffle, one shard per rank) that yields
    (epoch, index) pairs, so the dataset can seed each sample's augmentation, and that can
    start part-way into an epoch, so a resumed run continues the exact same sample stream.

    Works single-process too (num_replicas=1, rank=0)."""

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Begin at the start-th sample of this rank's shard of the given epoch."""
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())[self.start:]
        epoch = self.epoch
        return iter([(epoch, i) for i in indices])

    def __len__(self) -> int:
        return self.num_samples - self.start


def batches_per_epoch(num_samples: int, batch_size: int, world_size: int = 1) -> int:
    """Batches each rank sees per epoch (DistributedSampler pads shards to equal length)."""
    return math.ceil(math.ceil(num_samples / world_size) / batch_size)


def seed_worker(worker_id: int) -> None:
    """Seed a loader worker's global generators from the loader's own seeded stream."""
    info = torch.utils.data.get_worker_info()
    seed = info.seed if info is not None else torch.initial_seed()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    torch.manual_seed(seed)


class Prefetch:
    """Iterates `source` in a background thread, one item ahead of the caller: with the loader in
    the training process (--workers 0), the next batch is decoded, augmented and rendered while
    the network trains on this one. NumPy, OpenCV and torch release the GIL in their work, so the
    two overlap (about 15 ms of data per 0.15 s step for the demo's batch, otherwise in series
    with the step). Items come in the source's order, so a run is the same with or without it.

    An exception in the source is raised by the caller's next(); close() stops the thread (after
    the item it is making) and closes the source there, the thread that iterated it."""

    def __init__(self, source: Iterable, depth: int = 1):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(source),), name="prefetch", daemon=True)
        self._thread.start()

    def _run(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put((True, item)):
                    break
            else:
                self._put((False, StopIteration()))
        except BaseException as e:  # handed to the caller, raised there
            self._put((False, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _put(self, entry: tuple[bool, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetch:
        return self

    def __next__(self) -> Any:
        if self._stop.is_set():
            raise StopIteration
        ok, item = self._queue.get()
        if ok:
            return item
        self._stop.set()
        if isinstance(item, StopIteration):
            raise StopIteration
        raise item

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def make_loader(dataset: PoseDataset, batch_size: int, workers: int, seed: int, rank: int = 0,
                world_size: int = 1) -> tuple[torch.utils.data.DataLoader, EpochSampler]:
    sampler = EpochSampler(dataset, num_replicas=world_size, rank=rank, seed=seed)
    if workers > 0:
        # OpenCV's thread pool does not survive fork: a forked worker that touches it can wait
        # forever on a lock copied mid-use (seen here as a hang in cv2 inside the worker).
        # Turning the pool off in this process before the workers fork is the reference's cure;
        # the workers are the parallelism.
        import cv2

        cv2.setNumThreads(0)
    generator = torch.Generator()
    generator.manual_seed(seed * 1000 + rank)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
        worker_init_fn=seed_worker if workers > 0 else None, generator=generator,
        persistent_workers=workers > 0, drop_last=False, collate_fn=stacked,
    )
    return loader, sampler
