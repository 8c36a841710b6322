"""Small helpers to monkeypatch moto, failing loudly when a patched internal has moved.

Every extension goes through :func:`wrap` or :func:`replace`, so a moto upgrade that renames or removes
something we depend on stops the server at start-up instead of silently serving plain moto behaviour.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import moto


class MotoInternalsChanged(RuntimeError):
    """A moto internal the local AWS extensions patch is missing (moto was upgraded)."""


def require(owner: Any, name: str) -> Any:
    """Return ``owner.name``, or raise MotoInternalsChanged naming what is missing."""
    try:
        return getattr(owner, name)
    except AttributeError:
        where = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", repr(owner))
        module = getattr(owner, "__module__", "") or ""
        raise MotoInternalsChanged(
            f"moto {moto.__version__}: {module}.{where}.{name} is missing; "
            "tests/local_aws/extensions must be updated for this moto version (written for moto 5.2.5)"
        ) from None


def replace(owner: Any, name: str, new: Any) -> Any:
    """Set ``owner.name = new`` after checking it exists; returns the original."""
    original = require(owner, name)
    setattr(owner, name, new)
    return original


def wrap(owner: Any, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: replace the method ``owner.name`` by ``fn(original, *args, **kwargs)``."""
    original = require(owner, name)

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(original, *args, **kwargs)

        setattr(owner, name, wrapper)
        return wrapper

    return decorator


def add(owner: Any, name: str, fn: Callable[..., Any]) -> None:
    """Add a new method (e.g. a KMS action moto does not implement); refuse to shadow an existing one."""
    if name in vars(owner):
        raise MotoInternalsChanged(
            f"moto {moto.__version__}: {owner.__qualname__}.{name} now exists upstream; "
            "review whether the local AWS extension for it is still needed"
        )
    setattr(owner, name, fn)
