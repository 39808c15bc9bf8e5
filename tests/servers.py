"""Real redis-server processes for the tests: started on free ports in temporary folders."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import redis

READY = "Ready to accept connections"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, cluster: bool = False) -> int:
    """A free port; for a cluster node also port + 10000 (its bus), and at most 55535."""
    if not cluster:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 45000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def redis_binary() -> str | None:
    return shutil.which("redis-server")


STACK = Path(__file__).resolve().parent.parent / ".models" / "redis-stack"  # scripts/fetch_redis_stack.py


def redis_stack() -> Path | None:
    """The Redis 7.4 with RediSearch that scripts/fetch_redis_stack.py assembles, if it is there."""
    complete = (STACK / "bin" / "redis-server").is_file() and (STACK / "lib" / "redisearch.so").is_file()
    return STACK if complete and (STACK / "libssl").is_dir() else None


class RedisServer:
    """One redis-server on 127.0.0.1 (and a unix socket), which a test may kill, restart or pause."""

    def __init__(
        self, directory: Path, *, port: int | None = None, extra: tuple[str, ...] = (), stack: bool = False
    ) -> None:
        self.directory = directory
        self.stack = stack
        self.port = port or free_port(cluster="--cluster-enabled" in extra)
        self.socket = str(directory / "redis.sock")
        self.extra = extra
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = redis_binary()
        env = None
        extra = self.extra
        if self.stack:
            found = redis_stack()
            if found is None:
                raise RuntimeError("no Redis with vector search: run scripts/fetch_redis_stack.py")
            binary = str(found / "bin" / "redis-server")
            env = {**os.environ, "LD_LIBRARY_PATH": str(found / "libssl")}
            extra = ("--loadmodule", str(found / "lib" / "redisearch.so"), *extra)
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--appendonly", "no", "--unixsocket", self.socket, "--unixsocketperm", "700",
            "--logfile", "", "--daemonize", "no", *extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        ready = threading.Event()
        started = [False]
        stream = self.process.stdout
        assert stream is not None

        def drain() -> None:
            # Reading the server's own log is the readiness event; keep draining so it never blocks.
            for line in stream:
                self.log.append(line)
                if READY in line:
                    started[0] = True
                    ready.set()
            ready.set()  # the process ended: stop waiting

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        if not ready.wait(timeout) or not started[0]:
            self.stop()
            raise RuntimeError("redis-server did not start:\n" + "".join(self.log[-20:]))

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-connection."""
        if self.process is not None:
            self.process.kill()
            self._reap()

    def _reap(self) -> None:
        assert self.process is not None
        self.process.wait(10)
        if self._drain is not None:
            self._drain.join(10)  # EOF once the process is gone
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the server accepts connections but never answers (a stalled Redis)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self._reap()


class RedisCluster:
    """Three master redis-servers joined into a cluster with redis-cli --cluster create."""

    def __init__(self, directory: Path) -> None:
        flags = (
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        )
        self.nodes = [RedisServer(directory / f"node{i}", extra=flags) for i in range(3)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed")
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        # Gossip has no completion event to wait on: poll every node's view until all agree.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [n.client().cluster("info").get("cluster_state") for n in self.nodes]
            if all(s == "ok" for s in states):
                return
            time.sleep(0.05)
        raise RuntimeError(f"cluster did not converge: {states}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class Served:
    """An ASGI app served by uvicorn on a free port, in a thread."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.app: Any = app
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        from .helpers import eventually

        self.thread.start()
        assert eventually(lambda: self.server.started, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class ServeProcess:
    """`memollm serve` as a real process on a free port; ``output`` holds (stdout, stderr) once it stops."""

    def __init__(
        self, upstream: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        import sys

        self.port = free_port()
        self.args = [sys.executable, "-m", "memollm.cli", "serve", "--upstream", upstream, "--port",
                     str(self.port), *args]  # fmt: skip
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.output = ("", "")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200
        except httpx.TransportError:
            return False

    def __enter__(self) -> ServeProcess:
        from .helpers import eventually

        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env, cwd=self.cwd
        )
        if (
            not eventually(lambda: self.healthy() or self.proc.poll() is not None, timeout=20)
            or not self.healthy()
        ):
            self.proc.kill()
            out, err = self.proc.communicate(timeout=15)
            raise AssertionError(f"memollm serve did not start:\n{out}\n{err}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.output = self.proc.communicate(timeout=15)
