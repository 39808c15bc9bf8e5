from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import memollm
from memollm import ConfigError, cached_llm, config, registry


def _fn(**settings: object) -> memollm.CachedFunction[..., str]:
    @cached_llm(name="app.llm.ask", **settings)  # type: ignore[call-overload]
    def ask(prompt: str) -> str:
        return prompt

    return ask  # type: ignore[no-any-return]


def test_precedence_from_lowest_to_highest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each source overrides the ones below it, in the documented order."""
    plain = _fn()
    decorated = _fn(ttl=100)
    assert (plain.cache.policy.ttl, decorated.cache.policy.ttl) == (3600.0, 100.0)

    memollm.configure(ttl=1)  # code default: below the decorator
    assert (plain.cache.policy.ttl, decorated.cache.policy.ttl) == (1.0, 100.0)

    Path("memollm.toml").write_text('ttl = 2\n[overrides."app.*"]\nnamespace = "from-file"\n')
    config.reset()
    memollm.configure(ttl=1)
    assert (plain.cache.policy.ttl, decorated.cache.policy.ttl) == (2.0, 100.0)

    monkeypatch.setenv("MEMOLLM_TTL", "3")
    config.reset()
    assert (plain.cache.policy.ttl, decorated.cache.policy.ttl) == (3.0, 100.0)

    memollm.configure("app.llm.*", ttl=4)  # code override: above the decorator
    assert (plain.cache.policy.ttl, decorated.cache.policy.ttl) == (4.0, 4.0)
    assert decorated.cache.policy.namespace == "from-file"

    Path("memollm.toml").write_text('[overrides."app.llm.*"]\nttl = 5\n')
    config.reset()
    memollm.configure("app.llm.*", ttl=4)
    assert decorated.cache.policy.ttl == 5.0

    monkeypatch.setenv("MEMOLLM_OVERRIDES", json.dumps({"app.*": {"ttl": 6}}))
    config.reset()
    assert decorated.cache.policy.ttl == 6.0


def test_longer_patterns_win_within_a_source() -> None:
    """Within one source, a more specific (longer) pattern beats a shorter one."""
    fn = _fn()
    memollm.configure("app.llm.ask", ttl=7)
    memollm.configure("*", ttl=8)
    assert fn.cache.policy.ttl == 7.0


def test_configure_takes_effect_on_the_next_call() -> None:
    """Configuration changed after decoration applies from the next call on."""
    calls = []

    @cached_llm(name="svc.ask")
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt

    ask("x")
    ask("x")
    memollm.configure("svc.*", enabled=False)
    ask("x")
    assert len(calls) == 2
    config.reset()
    ask("x")
    ask("x")
    assert len(calls) == 3  # the memory tier was reset too


def test_default_name_is_module_and_qualname() -> None:
    """Without name=, overrides match the function's module.qualname."""

    @cached_llm
    def ask(prompt: str) -> str:
        return prompt

    memollm.configure("tests.test_config.*", ttl=9)
    assert ask.cache.policy.ttl == 9.0


def test_pyproject_table(tmp_path: Path) -> None:
    """[tool.memollm] in pyproject.toml is read when there is no memollm.toml."""
    Path("pyproject.toml").write_text('[project]\nname = "x"\n[tool.memollm]\nnamespace = "proj"\n')
    config.reset()
    assert _fn().cache.policy.namespace == "proj"
    assert config.source() == "pyproject.toml"


def test_pyproject_without_table_is_ignored() -> None:
    """A pyproject.toml without [tool.memollm] changes nothing."""
    Path("pyproject.toml").write_text('[project]\nname = "x"\n')
    config.reset()
    assert _fn().cache.policy == memollm.Policy()
    assert config.source() is None


def test_explicit_config_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """MEMOLLM_CONFIG points at a file anywhere; a missing file is a clear error."""
    path = tmp_path / "elsewhere.toml"
    path.write_text('namespace = "explicit"\n')
    monkeypatch.setenv("MEMOLLM_CONFIG", str(path))
    config.reset()
    assert _fn().cache.policy.namespace == "explicit"
    monkeypatch.setenv("MEMOLLM_CONFIG", str(tmp_path / "missing.toml"))
    config.reset()
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        _fn()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ttl = ", "cannot read memollm.toml"),
        ("tll = 5", "unknown policy setting 'tll'"),
        ("ttl = -1", "-1"),
        ('overrides = "x"', "overrides"),
        ('[overrides]\n"a.*" = 5', "overrides.a.*"),
    ],
    ids=["bad-toml", "unknown-key", "bad-value", "overrides-not-table", "override-not-table"],
)
def test_file_errors_name_the_file(text: str, fragment: str) -> None:
    """A bad config file raises ConfigError naming the file and the problem."""
    Path("memollm.toml").write_text(text)
    config.reset()
    with pytest.raises(ConfigError) as info:
        _fn()
    assert "memollm.toml" in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("MEMOLLM_TTL", "soon", "'soon'"),
        ("MEMOLLM_STRICT", "maybe", "'maybe'"),
        ("MEMOLLM_OVERRIDES", "{not json", "not valid JSON"),
        ("MEMOLLM_OVERRIDES", "[1]", "JSON object"),
    ],
    ids=["ttl", "strict", "overrides-json", "overrides-shape"],
)
def test_environment_errors(monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str) -> None:
    """Bad MEMOLLM_* values raise ConfigError naming the variable's problem."""
    monkeypatch.setenv(name, value)
    config.reset()
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        _fn()


def test_configure_rejects_bad_settings() -> None:
    """configure() validates immediately and names the bad setting."""
    with pytest.raises(ConfigError, match="ttll"):
        memollm.configure(ttll=1)
    with pytest.raises(ConfigError, match="-1"):
        memollm.configure("x", ttl=-1)


def test_operator_changes_ttl_without_code_change(tmp_path: Path) -> None:
    """In a real process, MEMOLLM_OVERRIDES changes a decorated function's TTL."""
    script = tmp_path / "app.py"
    script.write_text(
        "from memollm import cached_llm\n"
        "@cached_llm(ttl=600)\n"
        "def ask(prompt): return prompt\n"
        "print(ask.cache.policy.ttl)\n"
    )
    env = {"MEMOLLM_OVERRIDES": json.dumps({"__main__:app.ask": {"ttl": 30}}), "PATH": ""}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, env=env, cwd=tmp_path
    )
    assert out.stdout.strip() == "30.0"


def test_tiers_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """MEMOLLM_SQLITE_PATH and MEMOLLM_REDIS_URL make the "sqlite" and "redis" tiers, behind breakers."""
    from memollm.backends.guard import Guarded
    from memollm.backends.redis import RedisBackend
    from memollm.backends.sqlite import SQLiteBackend

    monkeypatch.setenv("MEMOLLM_SQLITE_PATH", str(tmp_path / "x.db"))
    monkeypatch.setenv("MEMOLLM_REDIS_URL", "redis://:pw@127.0.0.1:1/2")
    config.reset()
    sqlite, redis_tier = registry.get_tier("sqlite"), registry.get_tier("redis")
    assert isinstance(sqlite, Guarded) and isinstance(sqlite.backend, SQLiteBackend)
    assert isinstance(redis_tier, Guarded) and isinstance(redis_tier.backend, RedisBackend)
    assert redis_tier.backend.url.endswith("/2")
    assert registry.get_tier("sqlite") is sqlite


def test_tiers_from_the_config_file() -> None:
    """A [backends] table names tiers by URL; a bad URL is a ConfigError naming the tier."""
    Path("memollm.toml").write_text('tiers = ["memory", "disk"]\n[backends]\ndisk = "sqlite://cache/x.db"\n')
    config.reset()

    @cached_llm
    def ask(prompt: str) -> str:
        return prompt

    assert ask("a") == ask("a")
    assert ask.cache.stats().hits == {"memory": 1}
    assert Path("cache/x.db").exists()
    Path("memollm.toml").write_text('[backends]\nbroken = "ftp://nowhere"\n')
    config.reset()
    with pytest.raises(ConfigError, match="tier 'broken'"):
        cached_llm(tiers=["broken"])(lambda: 1)


def test_unknown_tier_explains_how_to_configure_it() -> None:
    """Asking for an unconfigured tier says the three ways to provide it."""
    with pytest.raises(ConfigError, match="MEMOLLM_REDIS_URL"):
        cached_llm(tiers=["redis"])(lambda: 1)


def test_resilience_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries, stale_ttl and the single-flight switches can be set without a code change."""
    monkeypatch.setenv("MEMOLLM_RETRY", "3")
    monkeypatch.setenv("MEMOLLM_STALE_TTL", "600")
    monkeypatch.setenv("MEMOLLM_SINGLE_FLIGHT", "false")
    monkeypatch.setenv("MEMOLLM_REFRESH_AHEAD", "0.1")
    config.reset()
    policy = _fn().cache.policy
    assert isinstance(policy.retry, memollm.RetryPolicy) and policy.retry.attempts == 3
    assert (policy.stale_ttl, policy.single_flight, policy.refresh_ahead) == (600.0, False, 0.1)
    monkeypatch.setenv("MEMOLLM_KEYS", "sk-1")
    config.reset()
    with pytest.raises(ConfigError, match="can only be set in Python"):
        _fn()
