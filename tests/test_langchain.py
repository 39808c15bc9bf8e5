"""memollm.langchain.MemoLLMCache with langchain-core's own fake chat models."""

from __future__ import annotations

from typing import Any

import pytest

import memollm

pytest.importorskip("langchain_core")
from langchain_core.globals import set_llm_cache
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage

from memollm.langchain import MemoLLMCache


@pytest.fixture
def cache() -> Any:
    made = MemoLLMCache()
    set_llm_cache(made)
    yield made
    set_llm_cache(None)


def test_a_repeat_is_a_hit(cache: MemoLLMCache) -> None:
    """FakeListChatModel answers from its list in turn: a second answer would mean a second call."""
    model = FakeListChatModel(responses=["first", "second"])
    assert model.invoke("What is a proxy?").content == "first"
    again = model.invoke("What is a proxy?")
    assert isinstance(again, AIMessage) and again.content == "first"
    assert cache.stats().hits == {"memory": 1}


def test_another_prompt_or_model_setting_misses(cache: MemoLLMCache) -> None:
    """Another prompt or model setting misses."""
    model = FakeListChatModel(responses=["first", "second", "third"])
    model.invoke("one")
    assert model.invoke("two").content == "second"
    other = FakeListChatModel(responses=["other"], sleep=0.0)  # another llm_string (its parameters)
    assert other.invoke("one").content == "other"


def test_text_models_too(cache: MemoLLMCache) -> None:
    """Text-completion models are cached as chat models are."""
    llm = FakeListLLM(responses=["a", "b"])
    assert llm.invoke("hi") == "a"
    assert llm.invoke("hi") == "a"


async def test_async(cache: MemoLLMCache) -> None:
    """The async API is cached the same way."""
    model = FakeListChatModel(responses=["first", "second"])
    assert (await model.ainvoke("q")).content == "first"
    assert (await model.ainvoke("q")).content == "first"
    await cache.aclear()
    assert (await model.ainvoke("q")).content == "second"


def test_tenants_isolate(cache: MemoLLMCache) -> None:
    """Two tenants asking the same question each get their own answer."""
    model = FakeListChatModel(responses=["for a", "for b"])
    with memollm.tenant("a"):
        model.invoke("q")
    with memollm.tenant("b"):
        assert model.invoke("q").content == "for b"


def test_per_model_cache_and_a_rephrased_question(embedder: Any) -> None:
    """cache= on one model; with semantic=True a paraphrase is served, within the same llm_string."""
    semantic = MemoLLMCache(semantic=True, embedder=embedder)
    model = FakeListChatModel(responses=["use a list literal", "wrong"], cache=semantic)
    model.invoke("How do I create a list in Python?")
    assert model.invoke("What's the way to make a Python list?").content == "use a list literal"
    assert semantic.stats().hits == {"semantic": 1}
    other = FakeListChatModel(responses=["other model"], sleep=0.1, cache=semantic)
    assert other.invoke("What's the way to make a Python list?").content == "other model"


def test_update_and_lookup_round_trip(cache: MemoLLMCache) -> None:
    """Generations and chat generations come back as LangChain's own types, messages included."""
    from langchain_core.outputs import ChatGeneration, Generation

    cache.update("p", "llm", [Generation(text="ok", generation_info={"n": 1})])
    (plain,) = cache.lookup("p", "llm") or []
    assert (plain.text, plain.generation_info) == ("ok", {"n": 1})
    cache.update("q", "llm", [ChatGeneration(message=AIMessage(content="hi", id="m1"))])
    (chat,) = cache.lookup("q", "llm") or []
    assert isinstance(chat, ChatGeneration) and isinstance(chat.message, AIMessage)
    assert chat.message.content == "hi"
    assert cache.lookup("p", "other llm") is None


def test_prompts_are_keyed_as_given(cache: MemoLLMCache) -> None:
    """Two prompts that differ only in the order of their JSON keys are two prompts: two entries."""
    from langchain_core.outputs import Generation

    one = '[{"id": ["HumanMessage"], "kwargs": {"content": "q", "x": 1, "y": 2}}]'
    two = '[{"id": ["HumanMessage"], "kwargs": {"content": "q", "y": 2, "x": 1}}]'
    cache.update(one, "llm", [Generation(text="for one")])
    assert cache.lookup(two, "llm") is None
    restored = cache.lookup(one, "llm")
    assert restored is not None
    assert restored[0].text == "for one"
