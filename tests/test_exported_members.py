import memollm


def test_all_is_sorted_and_complete() -> None:
    """__all__ lists every public name the package exports, sorted."""
    public = {name for name in dir(memollm) if not name.startswith("_")}
    modules = {
        "asgi",
        "backends",
        "cli",
        "codec",
        "config",
        "errors",
        "events",
        "metrics",
        "keys",
        "policy",
        "pricing",
        "resilience",
        "semantic",
        "testing",
        "usage",
    }
    assert memollm.__all__ == sorted(memollm.__all__)
    assert public - modules - {"annotations"} == set(memollm.__all__)
