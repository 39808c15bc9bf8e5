"""What a function does, as a digest: part of its identity, so changed code never gets old answers.

The fingerprint covers the function's code, instruction by instruction with the constants
and names each one uses (so a prompt template's text counts), nested functions and lambdas
recursively, the values in its closure cells, and the immutable values of module globals it
reads (a ``SYSTEM_PROMPT = "..."`` at module level); helper functions of the same module that
it calls (or that its closure holds) are fingerprinted the same way. Line numbers,
docstrings and comments are not part of it: moving a function or documenting it keeps its
answers. Mutable globals (lists, dicts) are left out: their value when first fingerprinted
need not be the same in every process. A closure value that cannot be keyed (a client
object) is left out too, and named, so the caller can warn once.

Bytecode is what runs, so the fingerprint follows it: the same source under another Python
version may fingerprint differently (answers cached by one Python version are then not
served to another). Computed once per function (a few hundred microseconds), never per call.
"""

from __future__ import annotations

import contextlib
import dis
import hashlib
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .canonical import canonical, pack
from .errors import UncacheableArgumentError

__all__ = ["Fingerprint", "fingerprint"]

_MEMO: weakref.WeakKeyDictionary[object, Fingerprint] = weakref.WeakKeyDictionary()
_MAX_DEPTH = 8  # helpers of helpers: deeper references are named, not followed
_IMMUTABLE = (str, bytes, int, float, complex, bool, type(None), tuple, frozenset)
_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
# *args, **kwargs, generator, coroutine, async generator: what kind of function it is.
_KIND_FLAGS = 0x04 | 0x08 | 0x20 | 0x80 | 0x200


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A function's fingerprint, and the closure values left out of it (they could not be keyed)."""

    digest: str
    left_out: tuple[str, ...] = ()


def fingerprint(func: Callable[..., Any]) -> Fingerprint:
    """The fingerprint of ``func`` (a function, or anything wrapping one through ``__wrapped__``)."""
    target = _unwrap(func)
    try:
        return _MEMO[target]
    except (KeyError, TypeError):
        pass
    left_out: list[str] = []
    tree = _function(target, 0, set(), left_out, "")
    found = Fingerprint(hashlib.blake2b(pack(tree), digest_size=16).hexdigest(), tuple(left_out))
    with contextlib.suppress(TypeError):  # not weak-referenceable: computed again next time
        _MEMO[target] = found
    return found


def _unwrap(func: object) -> object:
    for _ in range(16):
        if isinstance(func, (classmethod, staticmethod, types.MethodType)):
            func = func.__func__
        elif not isinstance(func, types.FunctionType) and hasattr(func, "__wrapped__"):
            func = func.__wrapped__
        else:
            break
    return func


def _function(func: object, depth: int, seen: set[int], left_out: list[str], where: str) -> object:
    """The canonical tree of one function: its code, its closure's values, the globals it reads."""
    if not isinstance(func, types.FunctionType):
        # A builtin or a callable object: its name is all that is cheap and stable.
        kind = type(func)
        return ["callable", f"{kind.__module__}.{kind.__qualname__}", getattr(func, "__qualname__", None)]
    if id(func) in seen or depth > _MAX_DEPTH:
        return ["ref", func.__module__, func.__qualname__]
    seen.add(id(func))
    code = func.__code__
    closure: list[list[object]] = []
    for name, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell: a name bound after the function was made
            closure.append([name, "<empty>"])
            continue
        closure.append([name, _value(value, depth, seen, left_out, f"{where}{name}")])
    reads: list[list[object]] = []
    for name in sorted(_globals_read(code)):
        if name in func.__globals__:
            found = _global(func.__globals__[name], func.__module__, depth, seen, left_out)
            if found is not None:
                reads.append([name, found])
    return ["function", _code(code), closure, reads]


def _code(code: types.CodeType) -> object:
    """Instructions with the values they use (not the indexes, which a docstring shifts)."""
    out: list[object] = [code.co_argcount, code.co_kwonlyargcount, code.co_flags & _KIND_FLAGS]
    for ins in dis.get_instructions(code):
        arg = ins.argval
        if isinstance(arg, types.CodeType):
            out.append([ins.opname, _code(arg)])
        elif ins.arg is None:
            out.append(ins.opname)
        else:
            out.append([ins.opname, _constant(arg)])
    return out


def _constant(value: object) -> object:
    if isinstance(value, types.CodeType):
        return _code(value)
    if isinstance(value, (tuple, frozenset)):
        items = [_constant(v) for v in value]
        return ["tuple", items] if isinstance(value, tuple) else ["set", sorted(map(pack, items))]
    if isinstance(value, complex):
        return ["complex", value.real, value.imag]
    if value is Ellipsis:
        return ["ellipsis"]
    try:
        return canonical(value)
    except UncacheableArgumentError:
        return ["repr", type(value).__qualname__]


def _globals_read(code: types.CodeType) -> set[str]:
    names = set()
    for ins in dis.get_instructions(code):
        if ins.opname in _GLOBAL_OPS:
            names.add(str(ins.argval))
        elif isinstance(ins.argval, types.CodeType):
            names |= _globals_read(ins.argval)
    return names


def _global(value: object, module: str, depth: int, seen: set[int], left_out: list[str]) -> object | None:
    """A global's part in the fingerprint: immutable values and same-module helpers; else None."""
    if isinstance(value, types.FunctionType):
        if value.__module__ == module:
            return _function(value, depth + 1, seen, left_out, f"{value.__qualname__}.")
        return ["ref", value.__module__, value.__qualname__]
    if isinstance(value, _IMMUTABLE) and _deeply_immutable(value):
        return _constant(value)
    return None  # modules, classes, mutable values, objects: not part of what the code *is*


def _deeply_immutable(value: object) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(isinstance(v, _IMMUTABLE) and _deeply_immutable(v) for v in value)
    return True


def _value(value: object, depth: int, seen: set[int], left_out: list[str], where: str) -> object:
    """A closure value (or a default): keyed like an argument, a function by its own fingerprint."""
    if isinstance(value, types.FunctionType) or hasattr(value, "__wrapped__"):
        return _function(_unwrap(value), depth + 1, seen, left_out, f"{where}.")
    if isinstance(value, type):
        return ["type", value.__module__, value.__qualname__]
    try:
        return canonical(value, where)
    except UncacheableArgumentError:
        left_out.append(where)
        return ["left out", type(value).__qualname__]
