"""What the Redis backend sends beyond plain commands (its Lua scripts), and how it reads a log row."""

from __future__ import annotations

__all__ = ["FENCE", "FENCED_SET", "RENEW", "UNLOCK", "vlog_row"]


# Delete the lock only if it still holds our token: never release another holder's lock.
UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


# Extend the lock's lease only while it still holds our token.
RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
    "end return 0"
)


# A lease's fencing token: one more than the last holder's. Lives at least an hour, and as long
# as an entry written under it (see FENCED_SET).
FENCE = (
    "local n = redis.call('incr', KEYS[1]) "
    "if redis.call('pttl', KEYS[1]) < 3600000 and redis.call('pttl', KEYS[1]) ~= -1 then "
    "redis.call('pexpire', KEYS[1], 3600000) end return n"
)


# Store an entry made under a lease unless a later holder's token is already there: a holder
# that stalled past its lease never overwrites the answer of the one that took over.
FENCED_SET = (
    "if tonumber(redis.call('get', KEYS[2]) or '0') > tonumber(ARGV[3]) then return 0 end "
    "if tonumber(ARGV[2]) > 0 then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "local left = redis.call('pttl', KEYS[2]) "
    "if left >= 0 and left < tonumber(ARGV[2]) then redis.call('pexpire', KEYS[2], ARGV[2]) end "
    "else redis.call('set', KEYS[1], ARGV[1]) redis.call('persist', KEYS[2]) end return 1"
)


def vlog_row(fields: dict[bytes, bytes]) -> tuple[object, object, object, object]:
    """A vector-log stream entry as (key, text, vector, expiry); what does not decode is None."""

    def text(name: bytes) -> str | None:
        try:
            return fields[name].decode()
        except (KeyError, UnicodeDecodeError, AttributeError):
            return None

    raw = text(b"e")
    try:
        expires = float(raw) if raw else None
    except ValueError:
        expires = float("nan")  # unreadable: skipped
    return text(b"k"), text(b"t"), fields.get(b"v"), expires
