import memollm


def test_all_is_sorted_and_complete() -> None:
    """__all__ lists every public name the package exports, sorted."""
    public = {name for name in dir(memollm) if not name.startswith("_")}
    modules = {
        "asgi", "backends", "canonical", "cli", "coalesce", "codec", "config", "core", "errors", "events",
        "fingerprint", "identity", "instances", "paths", "sdk", "openai", "anthropic", "langchain",
        "litellm",
        "metrics", "keys", "outcomes", "policy", "pricing", "prompt", "registry", "resilience", "semantic",
        "statistics", "switches", "testing", "usage", "complete", "sse", "settings_text", "worth",
    }  # fmt: skip
    assert memollm.__all__ == sorted(memollm.__all__)
    assert public - modules - {"annotations"} == set(memollm.__all__)
