"""Embedders: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .._install import extra as _extra
from .fetch import FILES, complete, default_model_dir, hub_reachable, missing_model_help, quiet_fastembed

__all__ = [
    "DEFAULT_MODEL",
    "BatchingEmbedder",
    "Embedder",
    "EmbedderLoading",
    "EmbedderUnavailable",
    "FastEmbedder",
    "as_embedder",
]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
Vectors = npt.NDArray[np.float32]


class EmbedderUnavailable(RuntimeError):
    """The embedding model could not be loaded; the message says why and how to fix it."""


class _Offline(RuntimeError):
    """The model is not here and cannot be downloaded (its message says how to get it)."""


class EmbedderLoading(EmbedderUnavailable):
    """The embedding model is being fetched in the background; try again later."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into an (n, d) float32 array of L2-normalised vectors."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts``."""


def _normalise(vectors: Any) -> Vectors:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = arr / norms
    return out


class FastEmbedder:
    """A fastembed model, loaded on first use (thread-safe).

    The model is ``model`` or ``MEMOLLM_EMBED_MODEL`` (default all-MiniLM-L6-v2), loaded
    from ``path`` or ``MEMOLLM_EMBED_MODEL_PATH`` when given (a folder with the ONNX file
    and tokenizer files, for machines without internet), otherwise downloaded by fastembed
    into ``cache_dir``.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        cache_dir: str | None = None,
        threads: int | None = None,
        batch_size: int = 64,
        background: bool = True,
        download: bool = True,
    ) -> None:
        self.background = background
        self.download = download
        self._loading = False
        self.model = model or os.environ.get("MEMOLLM_EMBED_MODEL") or DEFAULT_MODEL
        raw_path = path or os.environ.get("MEMOLLM_EMBED_MODEL_PATH")
        if not raw_path and self.model == DEFAULT_MODEL and complete(default_model_dir()):
            raw_path = default_model_dir()  # where `memollm model fetch` put it
        self.path = str(raw_path) if raw_path else None
        self.cache_dir = cache_dir
        self.threads = threads
        self.batch_size = batch_size
        self._model: Any = None
        self._failure: EmbedderUnavailable | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = f", path={self.path!r}" if self.path else ""
        return f"FastEmbedder({self.model!r}{where})"

    @property
    def loading(self) -> bool:
        """Whether a download of the model is under way in the background."""
        return self._loading

    def load(self) -> Any:
        """Load the model now, or raise why not.

        From ``path``, or fastembed's cache, with no network at all. A model that must be
        downloaded is fetched on a background thread when ``background`` is true (raising
        :class:`EmbedderLoading` until it is ready, so no caller waits on a download or on
        fastembed's retries when offline), else here. A failure is remembered and raised
        as :class:`EmbedderUnavailable`, saying how to fix it.
        """
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is not None:  # another thread loaded it while we waited
                return self._model  # type: ignore[unreachable]  # mypy cannot see the other thread
            if self._failure is not None:
                raise self._failure
            if self._loading:
                raise EmbedderLoading(f"the embedding model {self.model!r} is still downloading")
            try:
                self._model = self._open(local_only=True)
                return self._model
            except Exception as exc:
                if self.path or not self.download:  # a local model that fails, or no downloads
                    raise self._fail(exc) from exc
            if not self.background:
                try:
                    self._model = self._fetch()
                except Exception as exc:
                    raise self._fail(exc) from exc
                return self._model
            self._loading = True
        threading.Thread(target=self._download, name="memollm-embedder-download", daemon=True).start()
        raise EmbedderLoading(
            f"fetching the embedding model {self.model!r} in the background; semantic lookups start "
            f"when it is ready (`memollm model fetch`, or MEMOLLM_EMBED_MODEL_PATH set to a local copy, "
            f"avoids the wait)"
        )

    def _fetch(self) -> Any:
        """Download the model, unless the hub cannot be reached: then fail at once, saying how to get it."""
        if not hub_reachable():
            raise _Offline(missing_model_help(self.model))
        return self._open(local_only=False)

    def _download(self) -> None:
        try:
            model = self._fetch()
        except Exception as exc:  # noqa: BLE001 - remembered and raised to the next caller
            with self._lock:
                self._fail(exc)
                self._loading = False
            return
        with self._lock:
            self._model = model
            self._loading = False

    def _open(self, *, local_only: bool) -> Any:
        from fastembed import TextEmbedding

        options: dict[str, Any] = {"cache_dir": self.cache_dir, "threads": self.threads}
        if self.path:
            options["specific_model_path"] = self.path
        if not local_only:
            return TextEmbedding(self.model, **options)
        with quiet_fastembed():  # "not in the cache" is logged as an error; it is only a probe
            return TextEmbedding(self.model, local_files_only=True, **options)

    def _fail(self, exc: Exception) -> EmbedderUnavailable:
        if isinstance(exc, _Offline):
            message = str(exc)
        elif isinstance(exc, ImportError):
            message = f"the semantic extra is not installed ({exc}): {_extra('semantic')}"
        elif self.path:
            message = (
                f"cannot load the embedding model {self.model!r} from {self.path!r}: {type(exc).__name__}: "
                f"{str(exc).rstrip('.')}. The folder (path= or MEMOLLM_EMBED_MODEL_PATH) must hold "
                f"{', '.join(FILES)}; `memollm model fetch {self.path}` fills it"
            )
        else:
            reason = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
            message = f"cannot load the embedding model {self.model!r}: {reason}"
        self._failure = EmbedderUnavailable(message)
        return self._failure

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` in batches."""
        model = self.load()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return _normalise(np.stack(list(model.embed(list(texts), batch_size=self.batch_size))))


class _CallableEmbedder:
    """A plain function ``texts -> vectors`` used as an embedder (its output is normalised)."""

    def __init__(self, fn: Callable[[Sequence[str]], Any]) -> None:
        self.fn = fn

    def embed(self, texts: Sequence[str]) -> Vectors:
        return _normalise(self.fn(list(texts)))


def as_embedder(obj: Embedder | Callable[[Sequence[str]], Any]) -> Embedder:
    """An embedder from an Embedder or a plain callable."""
    if isinstance(obj, Embedder):
        return obj
    if callable(obj):
        return _CallableEmbedder(obj)
    raise TypeError(f"an embedder must have embed(texts) or be callable, got {obj!r}")


class BatchingEmbedder:
    """Concurrent single-text requests share embedding batches.

    The first caller to arrive while no batch is being embedded takes every request
    queued meanwhile (up to ``max_batch``) and embeds them in one model call; others
    wait for their vector. When the last batch showed concurrent demand, the leader
    first waits up to ``window`` seconds for the batch to fill; a lone caller never waits.
    """

    def __init__(self, inner: Embedder, *, max_batch: int = 32, window: float = 0.002) -> None:
        self.inner = inner
        self.max_batch = max_batch
        self.window = window
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: list[tuple[str, Future[Vectors]]] = []
        self._busy = False
        self._last_batch = 1
        self.batches = 0  # model calls made, for tests and stats

    @property
    def waiting(self) -> int:
        """Texts queued for the next batch."""
        with self._lock:
            return len(self._queue)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` directly (already a batch)."""
        self.batches += 1
        return self.inner.embed(texts)

    def embed_one(self, text: str) -> npt.NDArray[np.float32]:
        """One text's vector, batched with whatever other threads ask for at the same time."""
        future: Future[Vectors] = Future()
        with self._lock:
            self._queue.append((text, future))
            self._arrived.notify_all()
            lead = not self._busy
            if lead:
                self._busy = True
        while lead:
            with self._lock:
                if self._last_batch > 1:  # demand is concurrent: let the batch fill a little
                    deadline = time.monotonic() + self.window
                    while len(self._queue) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                        self._arrived.wait(left)
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                if not batch:
                    self._busy = False
                    break
                self._last_batch = len(batch)
            try:
                vectors = self.embed([t for t, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - every waiter must learn of it
                for _, f in batch:
                    f.set_exception(exc)
            else:
                for row, (_, f) in zip(vectors, batch, strict=True):
                    f.set_result(row)
        return future.result()
