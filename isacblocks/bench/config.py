"""The sections of ``isac bench`` and the sizes and repetitions of a full and a quick run (`BenchConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEVICE_SECTIONS", "FULL", "QUICK", "SECTIONS", "BenchConfig"]

SECTIONS = ("roofline", "receivers", "training", "chain", "work_overhead", "stream", "zmq", "gnuradio", "gr_native",
            "memory")
#: Run only with ``--device cuda`` (or named in ``--only``): the CUDA kernel against the CPU kernel.
DEVICE_SECTIONS = ("gpu",)


@dataclass(frozen=True)
class BenchConfig:
    """Sizes and repetitions of one run."""

    mode: str
    receiver_batches: tuple[int, ...]
    receiver_warmup: int
    receiver_reps: int
    matmul_n: int
    matmul_reps: int
    bandwidth_mb: int
    train_batch: int
    train_warmup: int
    train_reps: int
    train_check_batch: int
    train_library_per_dense: int
    train_env_steps: int
    chain_frames: dict
    chain_warmup_frames: dict
    chain_reps: int
    noop_calls: int
    noop_blocks: int
    noop_reps: int
    zmq_frames: int
    zmq_reps: int
    memory_batch: int
    dense_memory_batches: tuple[int, ...]
    stream_seconds: float
    stream_warmup_calls: int
    stream_interval_s: float
    stream_kernel_frames: int
    stream_kernel_reps: int
    stream_chain_frames: int
    stream_chain_warmup_frames: int
    stream_chain_reps: int
    stream_link_frames: int
    stream_link_reps: int


FULL = BenchConfig(
    mode="full", receiver_batches=(64, 512), receiver_warmup=1, receiver_reps=5,
    matmul_n=1024, matmul_reps=7, bandwidth_mb=256,
    train_batch=256, train_warmup=1, train_reps=3, train_check_batch=32, train_library_per_dense=5,
    train_env_steps=8,
    chain_frames={"mbml": 2048, "maprt": 256}, chain_warmup_frames={"mbml": 64, "maprt": 64}, chain_reps=3,
    noop_calls=2000, noop_blocks=8, noop_reps=7,
    zmq_frames=3000, zmq_reps=3,
    memory_batch=3000, dense_memory_batches=(64, 192),
    stream_seconds=60.0, stream_warmup_calls=4, stream_interval_s=1.0,
    stream_kernel_frames=512, stream_kernel_reps=5, stream_chain_frames=2048, stream_chain_warmup_frames=64,
    stream_chain_reps=3, stream_link_frames=2048, stream_link_reps=3,
)

QUICK = BenchConfig(
    mode="quick", receiver_batches=(8, 16), receiver_warmup=1, receiver_reps=2,
    matmul_n=512, matmul_reps=3, bandwidth_mb=64,
    train_batch=16, train_warmup=1, train_reps=2, train_check_batch=8, train_library_per_dense=2,
    train_env_steps=0,
    chain_frames={"mbml": 128, "maprt": 16}, chain_warmup_frames={"mbml": 64, "maprt": 8}, chain_reps=2,
    noop_calls=300, noop_blocks=8, noop_reps=3,
    zmq_frames=256, zmq_reps=1,
    memory_batch=64, dense_memory_batches=(4, 12),
    stream_seconds=3.0, stream_warmup_calls=2, stream_interval_s=0.25,
    stream_kernel_frames=512, stream_kernel_reps=2, stream_chain_frames=128, stream_chain_warmup_frames=64,
    stream_chain_reps=2, stream_link_frames=256, stream_link_reps=1,
)
