"""What differs between two prompts: the same question, never the same, or open for the verifier."""

from __future__ import annotations

import pytest

from memollm.semantic.difference import compare

CASES = [
    # (cached, query, kind)
    ("What is the capital of Germany?", "what is the capital of germany", "same"),
    ("How do I turn Bluetooth on?", "How can I switch Bluetooth on?", "same"),
    ("turn on notifications", "please switch on notifications", "same"),
    ("How do I enable captions?", "How can I turn captions on?", "same"),
    ("How do I make a list in Python?", "How do I create a list in Python?", "same"),
    ("How do I delete a branch in git?", "How do I remove a branch in git?", "same"),
    ("How do I hide a column in Excel?", "How do I hide the column in Excel?", "same"),
    ("switch dark mode on", "turn dark mode off", "never"),
    ("switch on dark mode", "turn off dark mode", "never"),
    ("put dark mode on", "set dark mode to off", "never"),
    ("How do I enable 2FA?", "How do I disable 2FA?", "never"),
    ("Why won't the screen turn on?", "Why won't the screen turn off?", "never"),
    ("How do I upload a file to S3?", "How do I download a file from S3?", "never"),
    ("Sort a list in ascending order", "Sort a list in descending order", "never"),
    ("What is the largest planet?", "What is the smallest planet?", "never"),
    ("What is the hottest planet?", "What is the coldest planet?", "never"),
    ("How do I zoom in on a PDF?", "How do I zoom out on a PDF?", "never"),
    ("Find flights from Boston to Denver", "Find flights from Denver to Boston", "never"),
    ("What is 7% of 80?", "What is 8% of 80?", "never"),
    ("How many feet are in a mile?", "How many meters are in a mile?", "never"),
    (
        "Is it safe to take ibuprofen while pregnant?",
        "Is it not safe to take ibuprofen while pregnant?",
        "never",
    ),
    ("What is the capital of Peru?", "What is the capital of Chile?", "never"),
    ("How do I install Python on Windows?", "How do I install Python on Linux?", "never"),
    ("What is a proxy server?", "Explain what a proxy server is", "open"),
    ("打开蓝牙", "关闭蓝牙", "never"),
    ("如何上传文件", "如何下载文件", "never"),
    ("我不喜欢它", "我喜欢它", "never"),
    ("三加五等于几", "三加六等于几", "never"),
    ("什么是 Python 的装饰器?", "什么是Python的装饰器？", "same"),
]


@pytest.mark.parametrize(("cached", "query", "kind"), CASES, ids=[f"{k}:{q}" for _, q, k in CASES])
def test_the_difference_decides(cached: str, query: str, kind: str) -> None:
    """Each pair gets the verdict its difference calls for, with a reason."""
    found = compare(query, cached)
    assert found.kind == kind, found.reason
    assert found.reason


def test_on_as_a_preposition_is_no_switch() -> None:
    """'on Windows' carries no polarity: only a phrasal verb's 'on' does."""
    assert (
        compare(
            "How do I turn off notifications on Windows?", "How can I disable notifications on Windows?"
        ).kind
        == "same"
    )


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("How do I block a number?", "How do I unblock a number?"),
        ("How do I select all rows?", "How do I deselect all rows?"),
        ("Translate this from english to spanish", "Translate this from spanish to english"),
        ("translate english to spanish", "translate spanish to english"),
        ("How do I convert a string to an int in Java?", "How do I convert an int to a string in Java?"),
        ("Is it possible to run Docker on a Mac?", "Is it impossible to run Docker on a Mac?"),
        ("Why is the sky blue?", "Is the sky blue?"),
        ("Where can I buy a used bike?", "How can I buy a used bike?"),
    ],
    ids=["un-", "de-", "from-to", "to", "convert", "im-", "why-is", "where-how"],
)
def test_look_alikes_beyond_the_lists(cached: str, query: str) -> None:
    """Negating prefixes, "A to B" against "B to A", and a reason or place asked for: never the same."""
    assert compare(query, cached).kind == "never"
