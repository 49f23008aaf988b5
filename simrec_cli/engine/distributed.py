"""Process-group set-up from torchrun's environment, and the collectives the engine needs.

One process needs no launcher: without `WORLD_SIZE` in the environment everything here degrades to the
single-process case. Under torchrun, ranks read `RANK`, `LOCAL_RANK` and `WORLD_SIZE`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_timeout

from simrec_cli.errors import SimrecError, quoted

# Set by the launcher for the workers: the node count this node was started with (see `check_node_counts`).
EXPECTED_NODES_VARIABLE = "SIMREC_EXPECTED_NNODES"


@dataclass(frozen=True)
class World:
    """Where this process stands: its ranks, the world size and its device."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without it is a user error."""
    if requested.split(":")[0] not in ("auto", "cpu", "cuda"):
        raise SimrecError(
            f"unknown device {quoted(requested)} (--device or train.device)", "use auto, cpu, cuda or cuda:N"
        )
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise SimrecError("device cuda was requested but no CUDA GPU is available", "use --device cpu")
    return torch.device(requested)


def processes_on_this_node() -> int:
    """How many training processes share this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_world(requested_device: str, backend: str = "auto") -> World:
    """Join the process group when started by torchrun; otherwise describe the single process."""
    device = resolve_device(requested_device)
    if not launched_by_torchrun():
        if device.type == "cuda":
            torch.cuda.set_device(0)
            device = torch.device("cuda", 0)
        return World(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ["LOCAL_RANK"])
    size = int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        # The local rank, not the global rank, picks the GPU: the global rank breaks multi-node runs.
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    chosen = backend if backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        store = attempt_store(size)
        if store is None:
            dist.init_process_group(backend=chosen, init_method="env://")
        else:
            dist.init_process_group(backend=chosen, store=store, rank=rank, world_size=size)
    return World(rank=rank, local_rank=local_rank, size=size, device=device)


def attempt_store(size: int) -> dist.Store | None:
    """The key-value store of torchrun's agent, under a namespace of this attempt (None without an agent store).

    After a worker fails, torchrun restarts the whole group against the same store, which still holds the keys of
    the dead group: the restarted processes would read its addresses and never connect. A namespace per restart
    (TORCHELASTIC_RESTART_COUNT) gives every attempt clean keys.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    agent = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), size, is_master=False,
                          timeout=default_pg_timeout)  # fmt: skip
    return dist.PrefixStore(f"simrec/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", agent)


def check_node_counts(world: World, expected: int) -> None:
    """Every node was started with the same --nnodes, and the run has that many nodes.

    torchrun's static rendezvous takes node 0's count: a node started with a larger --nnodes than node 0 would
    otherwise join a run it did not ask for (a larger count on node 0 ends in the rendezvous timeout instead).
    Every rank sees every node's count, so all of them stop with the same line.
    """
    counts = sorted(set(all_gather_objects(world, expected)))
    if len(counts) > 1:
        raise SimrecError(
            f"the nodes were started with different --nnodes ({' and '.join(map(str, counts))})",
            "start every node with the same --nnodes",
        )


def shutdown_world(world: World, wait_for_peers: bool = True) -> None:
    """Leave the process group cleanly (collecting first avoids gloo aborting at exit).

    After a finished run every rank meets at a barrier first. A rank that is stopping early (Ctrl-C, SIGTERM, an
    error) must not wait: its peers may sit in another collective that will never complete, and the barrier would
    hang until the backend's timeout. Leaving closes its connections, which ends those collectives instead.
    """
    gc.collect()
    if dist.is_initialized():
        if wait_for_peers and world.distributed:
            dist.barrier()
        dist.destroy_process_group()


@contextmanager
def joined_world(requested_device: str, backend: str = "auto") -> Iterator[World]:
    """`init_world` for the length of a block, left with `shutdown_world` however the block ends.

    The node-count check runs inside: a rank that stops on it must leave the process group too, or gloo's threads
    are torn down at exit while still joinable and the process aborts (SIGABRT) after printing its error line.
    """
    world = init_world(requested_device, backend)
    try:
        if EXPECTED_NODES_VARIABLE in os.environ:
            check_node_counts(world, int(os.environ[EXPECTED_NODES_VARIABLE]))
        yield world
    except BaseException:
        shutdown_world(world, wait_for_peers=False)
        raise
    shutdown_world(world)


def all_gather_objects(world: World, obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (a one-element list in a single process)."""
    if not world.distributed:
        return [obj]
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(world: World, obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean(world: World, value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (used for logged losses, never for metrics)."""
    if not world.distributed:
        return value
    reduced = value.detach().clone()
    dist.all_reduce(reduced)
    return reduced / world.size


def broadcast_buffers(world: World, module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm statistics) in `module` on every rank.

    DDP hands rank 0's buffers to the other ranks at every forward, but each rank then updates its own copy from
    its own batch, so an average of the model kept per rank (the EMA) drifts apart in its buffers.
    """
    if world.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def any_rank(world: World, flag: bool) -> bool:
    """True when the flag is set on at least one rank, so all ranks take the same branch."""
    if not world.distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=world.device)
    dist.all_reduce(tensor)
    return bool(tensor.item() > 0)
