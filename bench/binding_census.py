"""Who observes which Kivy property: a census of every live widget's property observers.

A soak that grows slowly (issue 12) can grow by bindings: a re-created widget's kv rule, or a callback, that binds
to a long-lived widget and outlives what it was for. Two censuses, one after the warm-up and one at the end, show
which observers grew: by the observed widget's class and property and by who observes (the kv rule's file, line
and expression, or the callback's qualified name).
"""
from __future__ import annotations

import gc
from collections import Counter
from typing import Any


def _describe(callback: Any, largs: tuple[Any, ...]) -> str:
    """Name the observer: a kv rule by where it is written, anything else by its qualified name."""
    fn = getattr(callback, "__func__", callback)
    name = getattr(fn, "__qualname__", type(fn).__name__)
    if name in ("call_fn", "delayed_call_fn", "update_intermediates") and largs:
        rule_args = largs[-1] if name == "update_intermediates" else largs[0]
        try:
            element, key, rule = rule_args[0], rule_args[1], rule_args[3]
            where = f"{str(getattr(rule.ctx, 'filename', '?')).rsplit('/', 1)[-1]}:{rule.line}"
            cls = element.__class__.__name__  # through the WeakProxy kv holds
            return f"kv {where} {cls}.{key}: {str(rule.value).strip()[:60]}"
        except (IndexError, TypeError, AttributeError, ReferenceError):
            return f"kv {name}"
    owner = getattr(callback, "__self__", None)
    if owner is not None:
        return f"{type(owner).__name__}.{getattr(fn, '__name__', name)}"
    return name


def census() -> Counter[tuple[str, str, str]]:
    """(observed class, property, observer) -> how many, over every live Kivy event dispatcher."""
    from kivy.event import EventDispatcher  # noqa: PLC0415 - Kivy only when asked

    counts: Counter[tuple[str, str, str]] = Counter()
    gc.collect()  # garbage still waiting for a collection is not what stays
    for obj in gc.get_objects():
        if not issubclass(type(obj), EventDispatcher):  # not isinstance: a WeakProxy passes it, and counts twice
            continue
        props = obj.properties()
        cls = type(obj).__name__
        for prop in props:
            try:
                observers = obj.get_property_observers(prop, args=True)
            except KeyError:
                continue
            for callback, largs, _kwargs, is_ref, _uid in observers:
                cb = callback() if is_ref else callback
                if cb is None:
                    continue
                counts[(cls, prop, _describe(cb, tuple(largs or ())))] += 1
    return counts


def growth(before: Counter[tuple[str, str, str]], after: Counter[tuple[str, str, str]],
           top: int | None = 25) -> list[dict[str, Any]]:
    """The observers that grew most between two censuses (all that grew when `top` is None)."""
    diff = Counter({k: after[k] - before.get(k, 0) for k in after})
    return [{"observed": f"{cls}.{prop}", "observer": who, "grew": n, "now": after[(cls, prop, who)]}
            for (cls, prop, who), n in diff.most_common(top) if n > 0]
