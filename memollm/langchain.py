"""LangChain's LLM cache, backed by memollm: ``set_llm_cache(MemoLLMCache(ttl=600, semantic=True))``.

Needs ``langchain-core`` (the ``langchain`` extra). Entries are keyed by the
prompt and LangChain's ``llm_string`` (the model and its parameters); the semantic tier embeds
the prompt (a chat model's last human message) and partitions by ``llm_string`` and the rest
of the conversation, so two models, two temperatures or two system prompts never share an
answer. Generations are stored as plain data (their text, generation info and, for chat
models, the message as ``message_to_dict`` gives it), msgpack-encoded: no pickle, no
``dumps``/``loads`` of LangChain's serialiser. Everything memollm does for a decorated
function applies: tiers, tenants, stats (``cache.stats()``), events and metrics.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache
from langchain_core.caches import BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from ._decorator import cached_llm
from .errors import ConfigError
from .statistics import CacheStats

__all__ = ["MemoLLMCache"]

_NAME = "langchain"


class MemoLLMCache(BaseCache):
    """A LangChain ``BaseCache`` whose entries live in memollm's tiers.

    Args:
        **policy: Any :func:`memollm.cached_llm` setting (``ttl``, ``tiers``, ``semantic``,
            ``namespace``, ...). The cache's name, for configuration overrides and stats, is
            ``"langchain"`` unless ``name=`` says otherwise.
    """

    def __init__(self, *, name: str = _NAME, **policy: Any) -> None:
        def langchain_generations(
            question: str, context: str, llm_string: str, prompt: str
        ) -> tuple[Any, ...]:
            raise LookupError("never called: the cache is read and written, not called through")

        if policy.get("key") is not None:
            raise ConfigError("MemoLLMCache keys on LangChain's prompt and llm_string; key= cannot be set")
        policy.setdefault("version", "langchain-3")
        # The exact key is the prompt as given (any two texts a model would see differently are two
        # entries); the semantic partition is the rest of the conversation, without the question.
        policy["ignore"] = frozenset(policy.get("ignore", ())) | {"prompt"}
        self._fn = cached_llm(name=name, prompt_arg="question", key=_exact, **policy)(langchain_generations)
        # Prompts split, and stored entries turned back into Generations, by identity: a hit
        # on the memory tier hands back the same immutable value, so both are done once.
        self._splits: LRUCache[str, tuple[str, str]] = LRUCache(maxsize=1024)
        self._restored: LRUCache[int, tuple[object, list[Generation]]] = LRUCache(maxsize=1024)

    def lookup(self, prompt: str, llm_string: str) -> list[Generation] | None:
        """The generations cached for ``prompt`` under ``llm_string`` (or a similar prompt's), else None."""
        return self._restore(self._fn.cache.get(*self._split(prompt), llm_string, prompt))

    async def alookup(self, prompt: str, llm_string: str) -> list[Generation] | None:
        """Async :meth:`lookup`."""
        return self._restore(await self._fn.cache.aget(*self._split(prompt), llm_string, prompt))

    def update(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        """Store the generations a model made for ``prompt`` under ``llm_string``."""
        self._fn.cache.store(_plain(return_val), *self._split(prompt), llm_string, prompt)

    async def aupdate(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        """Async :meth:`update` (the tier writes run on a worker thread)."""
        await asyncio.to_thread(self.update, prompt, llm_string, return_val)

    def clear(self, **kwargs: Any) -> None:
        """Remove every entry of this cache (in every tier)."""
        self._fn.cache.clear()

    async def aclear(self, **kwargs: Any) -> None:
        """Async :meth:`clear`."""
        await self._fn.cache.aclear()

    def stats(self) -> CacheStats:
        """Hits, misses and savings of this cache."""
        return self._fn.cache.stats()

    def _split(self, prompt: str) -> tuple[str, str]:
        found = self._splits.get(prompt)
        if found is None:
            found = self._splits[prompt] = _split(prompt)
        return found

    def _restore(self, stored: object) -> list[Generation] | None:
        if stored is None:
            return None
        kept = self._restored.get(id(stored))
        if kept is not None and kept[0] is stored:
            return list(kept[1])
        restored = _restore(stored)
        if restored is not None:
            self._restored[id(stored)] = (stored, restored)
        return restored


def _exact(question: str, context: str, llm_string: str, prompt: str) -> list[str]:
    """The exact key's material: the prompt as LangChain gave it, and the model's settings."""
    return [prompt, llm_string]


def _split(prompt: str) -> tuple[str, str]:
    """(the question, everything else): for a chat model, its last human message and the rest.

    A chat model's prompt is its messages as LangChain serialises them (JSON). The question is
    what the semantic tier embeds; the rest (system prompt, earlier turns) joins ``llm_string``
    in the partition, so a similar question only matches within the same conversation so far.
    The exact key is the prompt itself (see :func:`_exact`), so normalising here (the context's
    keys sorted) only groups what may be compared, never what is served as the same.
    """
    if not prompt.startswith("[{"):
        return prompt, ""
    try:
        messages = json.loads(prompt)
        for message in reversed(messages):
            kwargs = message.get("kwargs", {})
            if message.get("id", [""])[-1] == "HumanMessage" and isinstance(kwargs.get("content"), str):
                question, kwargs["content"] = kwargs["content"], None
                return question, json.dumps(messages, sort_keys=True)
    except (ValueError, AttributeError, TypeError, IndexError):
        pass
    return prompt, ""


def _plain(generations: Sequence[Generation]) -> tuple[tuple[str, str, str | None], ...]:
    """(text, generation info as JSON, message as JSON or None) per generation.

    Immutable, so the memory tier hands the same value to every hit without decoding it again.
    """
    out = []
    for generation in generations:
        message = None
        if isinstance(generation, ChatGeneration):
            message = json.dumps(message_to_dict(generation.message), default=str)
        out.append((generation.text, json.dumps(generation.generation_info, default=str), message))
    return tuple(out)


def _restore(stored: object) -> list[Generation] | None:
    """Generations from stored data; anything not of that shape is a miss (stored bytes are untrusted)."""
    if not isinstance(stored, tuple) or not stored:
        return None
    out: list[Generation] = []
    try:
        for text, info, message in stored:
            generation_info = json.loads(info)
            if message is not None:
                (restored,) = messages_from_dict([json.loads(message)])
                out.append(ChatGeneration(message=restored, generation_info=generation_info))
            else:
                out.append(Generation(text=text, generation_info=generation_info))
    except Exception:  # noqa: BLE001 - a malformed entry is treated as absent
        return None
    return out
