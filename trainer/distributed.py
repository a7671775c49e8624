"""Several processes, one run: under `torchrun` (WORLD_SIZE > 1) each process trains one shard
with DistributedDataParallel (gloo on CPU, nccl on GPUs); these are the few collective steps the
loop needs, each a no-op for a single process."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch

from .device import resolve_device


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> Dist:
    """torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=resolve_device(device))
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank=local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank, world, local, dev)


def any_rank(flag: bool, d: Dist) -> bool:
    """True on every rank if it is true on any (ranks must stop at the same iteration)."""
    if d.world == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(values: list[float], d: Dist) -> list[float]:
    if d.world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return (t / d.world).tolist()


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def stop_with_launcher() -> None:
    """Under torchrun, end this process when the launcher that started it dies (a SIGKILLed
    launcher cannot tell its ranks), instead of training on and writing the run folder without
    it. A watchdog thread polls the parent pid: portable, and unlike PR_SET_PDEATHSIG it does not
    depend on which of the launcher's threads started the rank."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.write(2, f"rank {os.environ.get('RANK', '?')}: the launcher (pid {parent}) died; stopping\n"
                         .encode())
                os._exit(143)  # files are replaced atomically: the run folder stays resumable

    threading.Thread(target=watch, name="posedata-launcher-watchdog", daemon=True).start()
