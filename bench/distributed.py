"""Data-parallel evaluation with torch.distributed (NCCL on GPUs, gloo on CPU).

`torchrun --nproc-per-node N -m bench.cli eval ...` starts N ranks; `genbench eval
--nproc N` starts them itself (this process is rank 0, N-1 helpers on 127.0.0.1). Rank 0
drives: it scores exactly as a single process would, except that every feature pass
(samples and, on a cache miss, reference splits) is split into contiguous row blocks,
one per rank (`shard`), and the rows come back in order (`gather_rows`). The other ranks
only extract the blocks rank 0 sends them, so the metrics are computed once, on rank 0,
which alone prints; the decisions (which extractor, cache hit or miss) are rank 0's
alone, so the ranks never disagree. Features do not depend on the number of ranks
(up to floating-point summation order inside the extractor's batches).

Sampling a model across ranks (`sample_shard`, `sample_data_parallel`) seeds each
fixed-size chunk of sample indices by its index, so the sample set is the same for any
number of ranks; a class-conditional model gets each index's label with it.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from bench.errors import UserError

TIMEOUT = timedelta(minutes=float(os.environ.get("GENBENCH_DIST_TIMEOUT_MIN", "60")))


# -- the plain functions --------------------------------------------------------------------


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: str = "auto") -> tuple[int, int]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR,
    MASTER_PORT, LOCAL_RANK): NCCL when `device` resolves to CUDA, else gloo. Returns
    (rank, world size); (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world = world_size_from_env()
    if world <= 1:
        return 0, 1
    rank = int(os.environ["RANK"])
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(rank_device(device, int(os.environ.get("LOCAL_RANK", "0"))))
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=TIMEOUT)
    return rank, world


def shard(n: int, rank: int, world: int) -> slice:
    """Rank `rank`'s contiguous block of n rows; blocks differ in size by at most one and
    cover 0..n-1 in rank order."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside a world of {world}")
    return slice(n * rank // world, n * (rank + 1) // world)


def gather_rows(tensor: torch.Tensor | None) -> torch.Tensor:
    """Every rank's rows, concatenated in rank order (on every rank). A rank with no rows
    may pass None or a tensor with 0 rows. Without a process group: `tensor` itself."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    device = _comm_device()
    meta = None if tensor is None or len(tensor) == 0 else (tuple(tensor.shape), tensor.dtype)
    metas: list = [None] * dist.get_world_size()
    dist.all_gather_object(metas, meta)
    present = [m for m in metas if m is not None]
    if not present:
        return tensor
    tail, dtype = present[0][0][1:], present[0][1]
    sizes = [m[0][0] if m is not None else 0 for m in metas]
    padded = torch.zeros((max(sizes), *tail), dtype=dtype, device=device)
    if meta is not None:
        padded[: len(tensor)] = tensor.to(device)
    parts = [torch.empty_like(padded) for _ in metas]
    dist.all_gather(parts, padded)
    out = torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)])
    return out.to(tensor.device if tensor is not None else "cpu")


# -- devices and backends -----------------------------------------------------------------


def backend_for(device: str) -> str:
    from bench.device import resolve_device

    return "nccl" if resolve_device(device).type == "cuda" else "gloo"


def rank_device(device: str, local_rank: int) -> torch.device:
    """The device of one rank: cuda:LOCAL_RANK when `device` is cuda/auto with GPUs."""
    from bench.device import resolve_device

    dev = resolve_device(device)
    if dev.type != "cuda":
        return dev
    if dev.index is not None:
        return dev
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _broadcast(obj=None):
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# -- rank 0 drives, the other ranks extract ----------------------------------------------


class ShardedExtract:
    """Rank 0's feature hook (ScoringContext.extract): send each rank its block of rows,
    extract its own, gather all in order."""

    def __init__(self):
        self.world = dist.get_world_size()

    def __call__(self, name: str, fn, x: torch.Tensor) -> np.ndarray:
        if not x.is_contiguous():
            x = x.contiguous()
        # The strides travel too: an extractor may pick its kernels by memory layout (a
        # 1-channel batch can look channels-last), and every rank must compute alike.
        _broadcast(("extract", name, tuple(x.shape), x.stride(), x.dtype))
        device = _comm_device()
        for r in range(1, self.world):
            block = x[shard(len(x), r, self.world)]
            if len(block):
                dist.send(block.to(device), dst=r)
        mine = x[shard(len(x), 0, self.world)]
        part = torch.from_numpy(np.ascontiguousarray(fn(mine))) if len(mine) else None
        return gather_rows(part).cpu().numpy()

    def close(self) -> None:
        _broadcast(None)


def serve(data, device: torch.device, weights=None) -> None:
    """A rank other than 0: extract the blocks rank 0 sends until it says stop."""
    from bench.scoring import ScoringContext

    ctx = ScoringContext(data, torch.empty(0), device, weights=weights or {})
    extractors = {}
    while (msg := _broadcast()) is not None:
        _, name, shape, stride, dtype = msg
        sl = shard(shape[0], dist.get_rank(), dist.get_world_size())
        part = None
        if sl.stop > sl.start:
            size = (sl.stop - sl.start, *shape[1:])
            block = torch.empty_strided(size, stride, dtype=dtype, device=_comm_device())
            dist.recv(block, src=0)
            if name not in extractors:  # rank 0 loaded (or trained) it first: a cache hit
                extractors[name] = ctx.extractor(name).features
            part = torch.from_numpy(np.ascontiguousarray(extractors[name](block.cpu())))
        gather_rows(part)


def _drive(data, x, device, extractor, groups, weights, labels=None, source_indices=None):
    from bench.scoring import ScoringContext, score

    hook = ShardedExtract()
    ctx = ScoringContext(
        data,
        x,
        device,
        fake_labels=labels,
        source_indices=source_indices,
        features_for=[extractor],
        weights=weights,
        extract=hook,
    )
    ctx.provenance["data_parallel_ranks"] = hook.world
    results = score(ctx, groups)
    hook.close()
    return ctx, results


def score_data_parallel(
    data,
    x,
    device: str,
    extractor,
    groups: list[str],
    nproc: int = 1,
    weights=None,
    labels=None,
    source_indices=None,
):
    """(ScoringContext, metrics) on rank 0, None on the other ranks: under torchrun the
    ranks it started; else `nproc` processes on this machine (1: plainly, in process).
    labels: the class each sample was asked for (class-conditional samples), or None;
    source_indices: the source test row of each translation (bench.scoring), or None."""
    from bench.device import resolve_device
    from bench.scoring import ScoringContext, score

    if nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {nproc}")
    if world_size_from_env() > 1:
        if nproc > 1:
            raise UserError("--nproc and torchrun both start processes; use one of them")
        rank, _ = init_from_env(device)
        dev = rank_device(device, int(os.environ.get("LOCAL_RANK", "0")))
        try:
            if rank != 0:
                serve(data, dev, weights or {})
                return None
            return _drive(data, x, dev, extractor, groups, weights or {}, labels, source_indices)
        finally:
            dist.destroy_process_group()
    if nproc > 1:
        return _spawn_and_drive(
            data, x, device, extractor, groups, nproc, weights or {}, labels, source_indices
        )
    ctx = ScoringContext(
        data,
        x,
        resolve_device(device),
        fake_labels=labels,
        source_indices=source_indices,
        features_for=[extractor],
        weights=weights or {},
    )
    return ctx, score(ctx, groups)


def _spawn_and_drive(
    data, x, device, extractor, groups, nproc, weights, labels=None, source_indices=None
):
    import torch.multiprocessing as mp

    from bench.device import resolve_device

    backend = backend_for(device)
    if backend == "nccl" and resolve_device(device).index is not None:
        raise UserError(f"--nproc {nproc} uses cuda:0..{nproc - 1}; pass --device cuda or auto")
    if backend == "nccl" and resolve_cuda_count() < nproc:
        raise UserError(
            f"--nproc {nproc} on CUDA needs {nproc} GPUs, found {resolve_cuda_count()}; "
            "pass --device cpu to use gloo processes"
        )
    if backend == "gloo":
        _loopback_for_gloo()
    port = free_port()
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(
            target=_helper, args=(r, nproc, port, backend, data, device, weights), daemon=True
        )
        for r in range(1, nproc)
    ]
    for p in procs:
        p.start()
    ok = False
    try:
        dist.init_process_group(
            backend,
            init_method=f"tcp://127.0.0.1:{port}",
            rank=0,
            world_size=nproc,
            timeout=TIMEOUT,
        )
        if backend == "nccl":
            torch.cuda.set_device(rank_device(device, 0))
        dev = rank_device(device, 0)
        out = _drive(data, x, dev, extractor, groups, weights, labels, source_indices)
        ok = True
        return out
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        for p in procs:
            p.join(timeout=60 if ok else 0)
            if p.is_alive():
                p.terminate()
                p.join()
        if ok and any(p.exitcode != 0 for p in procs):
            raise RuntimeError(f"a data-parallel helper exited with {[p.exitcode for p in procs]}")


def _helper(rank, world, port, backend, data, device, weights) -> None:
    dist.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=TIMEOUT
    )
    dev = rank_device(device, rank)
    if backend == "nccl":
        torch.cuda.set_device(dev)
    try:
        serve(data, dev, weights)
    finally:
        dist.destroy_process_group()


def resolve_cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback_for_gloo() -> None:
    """Processes on one machine talk over the loopback interface."""
    if "GLOO_SOCKET_IFNAME" in os.environ or not hasattr(socket, "if_nameindex"):
        return
    names = {name for _, name in socket.if_nameindex()}
    for lo in ("lo", "lo0"):
        if lo in names:
            os.environ["GLOO_SOCKET_IFNAME"] = lo
            return


# -- sampling -------------------------------------------------------------------------------


def chunk_seed(seed: int, chunk: int) -> int:
    return (1_000_003 * seed + 7_919 * chunk + 17) % (2**63)


def sample_shard(
    model,
    n: int,
    *,
    seed: int,
    chunk: int,
    rank: int,
    world: int,
    batch_size: int | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """This rank's rows of an n-sample set made of chunks of `chunk` indices, chunk k
    drawn with a generator seeded by (seed, k): concatenated in rank order, the shards of
    any number of ranks give the same set. A class-conditional model gets `labels` (one per
    sample index), chunk k its slice of them, so sample i is of class labels[i] on any
    number of ranks."""
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} samples")
    chunks = -(-n // chunk)
    parts = []
    for k in range(chunks)[shard(chunks, rank, world)]:
        g = torch.Generator().manual_seed(chunk_seed(seed, k))
        m = min(chunk, n - k * chunk)
        options = {} if labels is None else {"labels": labels[k * chunk : k * chunk + m]}
        parts.append(model.sample(m, generator=g, batch_size=batch_size or chunk, **options))
    if not parts:
        return None
    return torch.cat([torch.as_tensor(p).cpu() for p in parts])


def sample_data_parallel(
    model, n: int, *, seed: int, chunk: int, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """All n samples on every rank, each rank sampling its chunks (see sample_shard)."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    return gather_rows(
        sample_shard(model, n, seed=seed, chunk=chunk, rank=rank, world=world, labels=labels)
    )
