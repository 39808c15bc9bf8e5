"""The semantic index in a Redis server against each process's own (``bench_semantic.py --server``)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from memollm.backends.redis import RedisBackend
from memollm.backends.redis_vectors import RedisVectorIndex
from memollm.semantic.embedder import FastEmbedder
from memollm.semantic.index import SemanticIndex

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / ".models" / "redis-stack"


def rss_mb() -> float:
    """This process's resident memory now (from /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_server(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LD_LIBRARY_PATH": str(STACK / "libssl")}
    proc = subprocess.Popen(
        [str(STACK / "bin" / "redis-server"), "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", folder, "--loadmodule", str(STACK / "lib" / "redisearch.so")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    backend = RedisBackend(url, timeout=60)
    for _ in range(100):
        try:
            backend.client.ping()
            break
        except Exception:  # not up yet
            time.sleep(0.1)
    return proc, url


def near(rng: np.random.Generator, vectors: np.ndarray, sigma: float) -> np.ndarray:
    noisy = vectors + rng.normal(0, sigma, vectors.shape).astype(np.float32)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def compare(sizes: list[int], queries: int, model_path: str) -> None:
    if not (STACK / "bin" / "redis-server").exists():
        raise SystemExit("no Redis with vector search: python scripts/fetch_redis_stack.py")
    rng = np.random.default_rng(0)
    model = FastEmbedder(path=model_path)
    prompts = [f"question number {i} about topic {i % 97}" for i in range(2048)]
    centres = np.concatenate([model.embed(prompts[j : j + 256]) for j in range(0, 2048, 256)])
    print("\n## the semantic index: in each process vs in the Redis server (RediSearch HNSW)")
    print(f"{'entries':>9} | {'fill/s proc':>11} {'proc+log':>8} {'fill/s srv':>10} | "
          f"{'p50 proc':>8} {'p50 srv':>8} {'p99 srv':>8} | {'recall proc':>11} {'recall srv':>10} | "
          f"{'RSS +MB proc':>12} {'RSS +MB srv':>11} {'server MB':>9} | "
          f"{'new process: replay':>19}")  # fmt: skip
    ratios: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        proc, url = start_server(folder)
        try:
            for size in sizes:
                backend = RedisBackend(url, timeout=60)
                backend.client.flushall()
                for name in backend.client.execute_command("FT._LIST"):
                    backend.client.execute_command("FT.DROPINDEX", name)
                stored = near(rng, centres[np.arange(size) % len(centres)], 0.03)
                keys = [f"ns:f:{i}" for i in range(size)]
                texts = [f"prompt {i}" for i in range(size)]
                before = rss_mb()
                started = time.perf_counter()
                index = RedisVectorIndex(backend)
                for start in range(0, size, 10_000):
                    rows = [
                        (keys[i], texts[i], stored[i].tobytes())
                        for i in range(start, min(size, start + 10_000))
                    ]
                    index.add_many("p", rows, None)
                fill_server = size / (time.perf_counter() - started)
                grew_server = rss_mb() - before
                before = rss_mb()
                started = time.perf_counter()
                local = SemanticIndex(max_entries=size + 1, max_bytes=2**40, ann_threshold=0)
                local.add_many("p", keys, stored, texts)
                local_seconds = time.perf_counter() - started
                fill_process = size / local_seconds
                grew_process = rss_mb() - before
                memory = backend.client.info("memory")["used_memory"] / 2**20
                fill_today = size / (local_seconds + _log_seconds(backend, stored, keys, texts))
                picks = rng.choice(size, size=queries, replace=False)
                probes = near(rng, stored[picks], 0.01)
                truth = [int(np.argmax(stored @ q)) for q in probes]
                t_srv, t_proc, agree, agree_proc = [], [], 0, 0
                for q, want in zip(probes, truth, strict=True):
                    start = time.perf_counter()
                    got = index.search("p", q.tobytes(), 1, 0.0)
                    t_srv.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    mine = local.search("p", q, k=1, threshold=0.0)
                    t_proc.append(time.perf_counter() - start)
                    agree_proc += bool(mine and mine[0].key == keys[want])
                    agree += bool(got and got[0][0] == keys[want])
                replay = f"{_replay_seconds(url, stored, keys, texts):.1f}s" if size <= 100_000 else "-"
                del local
                print(f"{size:9d} | {fill_process:11,.0f} {fill_today:8,.0f} {fill_server:10,.0f} | "
                      f"{statistics.median(t_proc) * 1e3:6.2f}ms {statistics.median(t_srv) * 1e3:6.2f}ms "
                      f"{sorted(t_srv)[int(0.99 * len(t_srv))] * 1e3:6.2f}ms | "
                      f"{agree_proc / len(probes):11.3f} {agree / len(probes):10.3f} | "
                      f"{grew_process:12.0f} {grew_server:11.0f} {memory:9.0f} | "
                      f"{replay:>19}")  # fmt: skip
                p50_ratio = statistics.median(t_srv) / statistics.median(t_proc)
                ratios.append(f"{size:9d} | fill {fill_server / fill_today:.2f}x of process+log | "
                              f"p50 {p50_ratio:.2f}x | client RSS growth {max(grew_server, 0):.0f} "
                              f"vs {grew_process:.0f} MB")  # fmt: skip
            print("\n## server index / process index (the floor: today's index)")
            print("\n".join(ratios))
        finally:
            proc.terminate()
            proc.wait(10)


def _log_seconds(backend: RedisBackend, stored: np.ndarray, keys: list[str], texts: list[str]) -> float:
    """The other half of the process index's bulk fill with a Redis tier: each prompt also goes
    to the shared log (pipelined XADDs, as ``store_many`` does), so other processes absorb it."""
    backend.vlog_max = len(keys) + 1
    started = time.perf_counter()
    for start in range(0, len(keys), 10_000):
        rows = [
            (keys[i], texts[i], stored[i].astype(np.float16).tobytes())
            for i in range(start, min(len(keys), start + 10_000))
        ]
        backend.vlog_extend("fill", rows, None)
    seconds = time.perf_counter() - started
    backend.client.delete(*backend.client.keys(f"{backend.prefix}:*fill*"))
    return seconds


def _replay_seconds(url: str, stored: np.ndarray, keys: list[str], texts: list[str]) -> float:
    """How long a new process needs before its first semantic hit with the process index:
    reading the whole shared log back from Redis into its own index (the server index needs none)."""
    from memollm.semantic.tier import SemanticTier

    backend = RedisBackend(url, timeout=60)
    backend.vlog_max = len(keys) + 1
    blobs = [v.astype(np.float16).tobytes() for v in stored]
    pipe = backend.client.pipeline(transaction=False)
    for i, (key, text, blob) in enumerate(zip(keys, texts, blobs, strict=True)):
        pipe.xadd(f"{backend.prefix}:replay:vectors", {"k": key, "t": text, "v": blob})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    tier = SemanticTier(embedder=lambda t: np.zeros((len(t), stored.shape[1]), dtype=np.float32), verify=None,
                        top_k=5, max_entries=len(keys) + 1, max_bytes=2**40, clock=time.time)  # fmt: skip
    started = time.perf_counter()
    cursor: object = None
    while True:
        rows, cursor = backend.vlog_since("replay", cursor)
        if not rows:
            break
        tier.absorb("replay", rows, cursor, stored.shape[1])
    return time.perf_counter() - started
