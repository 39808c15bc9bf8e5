from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import memollm
from memollm import config, events
from memollm.backends import MemoryBackend
from memollm.testing import FakeClock

from .faces import Face
from .servers import RedisCluster as RedisClusterServers
from .servers import RedisServer, Served
from .upstream import Upstream


@pytest.fixture(autouse=True)
def _isolated_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Every test starts with no config file, no MEMOLLM_* variables and a fresh memory tier."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    for name in list(os.environ):
        if name.startswith("MEMOLLM_"):
            monkeypatch.delenv(name)
    config.reset()
    # Token estimates use the documented heuristic, whether or not tiktoken is installed.
    monkeypatch.setattr("memollm.usage._state", "off")
    hooks = events.hooks
    yield
    config.reset()
    # A hook left subscribed would send every later test down the observed path.
    for hook in set(events.hooks) - set(hooks):
        events.unsubscribe(hook)


@pytest.fixture(params=["sync", "async"])
def face(request: pytest.FixtureRequest) -> Iterator[Face]:
    """The face a test's cached functions have: the test runs once with each (see tests/faces.py)."""
    made = Face(request.param)
    yield made
    made.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory(clock: FakeClock) -> MemoryBackend:
    """A memory tier on the fake clock, registered as the default "memory" tier."""
    backend = MemoryBackend(clock=clock)
    memollm.register_tier("memory", backend)
    return backend


@pytest.fixture
def warnings_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="memollm")
    return caplog


# -- real servers ---------------------------------------------------------------------


def _need_redis() -> None:
    from .servers import redis_binary

    if redis_binary() is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must install it")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (REDIS_URL is not used: the tests kill their own)."""
    _need_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied for this test."""
    if redis_server.process is None:  # a test killed it
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_stack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis 7.4 with RediSearch (vector search) for the session: scripts/fetch_redis_stack.py."""
    from .servers import redis_stack

    if redis_stack() is None:
        reason = "no Redis with vector search (python scripts/fetch_redis_stack.py assembles one)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must have it")
        pytest.skip(reason)
    server = RedisServer(tmp_path_factory.mktemp("redis-stack"), stack=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack_url(redis_stack_server: RedisServer) -> str:
    """The vector-search server's URL, emptied (indexes included) for this test."""
    if redis_stack_server.process is None:
        redis_stack_server.start()
    client = redis_stack_server.client()
    for name in client.execute_command("FT._LIST"):
        client.execute_command("FT.DROPINDEX", name)
    client.flushall()
    return redis_stack_server.url


@pytest.fixture
def fresh_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to kill, restart or pause."""
    _need_redis()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    if server.process is not None:
        server.resume()
    server.stop()


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis with vector search of this test's own, to kill, restart or pause."""
    from .servers import redis_stack

    if redis_stack() is None:
        reason = "no Redis with vector search (python scripts/fetch_redis_stack.py assembles one)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must have it")
        pytest.skip(reason)
    server = RedisServer(tmp_path / "stack", stack=True)
    server.start()
    yield server
    if server.process is not None:
        server.resume()
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A real three-master Redis Cluster for the session."""
    _need_redis()
    cluster = RedisClusterServers(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterServers) -> str:
    for node in redis_cluster.nodes:
        node.client().flushall()
    return redis_cluster.url


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A local OpenAI-compatible server with scripted replies."""
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture
def proxy(upstream: Upstream, tmp_path: Path) -> Iterator[Served]:
    """`memollm serve`'s app (memory + SQLite, 64 KiB bodies) over real HTTP in front of ``upstream``."""
    pytest.importorskip("uvicorn", reason="the server extra is not installed")
    from memollm import Policy
    from memollm.asgi.proxy import build_app
    from memollm.backends.sqlite import SQLiteBackend

    memollm.register_tier("sqlite", SQLiteBackend(tmp_path / "proxy.db"))
    app = build_app(upstream.url, policy=Policy(tiers=("memory", "sqlite")), max_body=64 * 1024)
    with Served(app) as served:
        yield served


# -- the offline embedding model ----------------------------------------------------

MODEL_DIR = Path(__file__).resolve().parent.parent / ".models" / "all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def model_path() -> str:
    """The offline all-MiniLM-L6-v2 folder made by scripts/fetch_test_model.py."""
    pytest.importorskip("fastembed", reason="the semantic extra is not installed")
    path = Path(os.environ.get("MEMOLLM_TEST_MODEL_PATH", MODEL_DIR))
    if not (path / "model.onnx").is_file():
        reason = f"no embedding model at {path}: run python scripts/fetch_test_model.py"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return str(path)


@pytest.fixture(scope="session")
def embedder(model_path: str) -> object:
    """The real fastembed model, loaded once for the session."""
    from memollm.semantic.embedder import FastEmbedder

    model = FastEmbedder(path=model_path)
    model.load()
    return model
