"""Argument checks shared by the engine and the plugins (layers, data sources, the trainer): each raises
a ValueError that names the argument, the value received and what is allowed; `renamed` maps a renamed
value to its new name."""

import warnings


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")


def positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"`{name}` must be a number > 0. Received: {name}={value!r}")


def rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value!r}")


def one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(a) for a in allowed)}. "
            f"Received: {name}={value!r}"
        )


def divisible(name, value, by_name, by_value):
    if value % by_value:
        raise ValueError(
            f"`{name}` must be divisible by `{by_name}`: {name}={value} is not "
            f"divisible by {by_name}={by_value}. Choose {name} as a multiple of "
            f"{by_value} or change {by_name}."
        )


def in_range(name, value, low, high):
    positive_int(name, value)
    if not low <= value <= high:
        raise ValueError(
            f"`{name}` must be between {low} and {high}. Received: {name}={value!r}"
        )


def renamed(name, value, renames):
    """`value`, or its new name when `renames` maps it: an old name that configs and saved `.keras` files
    may still hold keeps working (as the new one), with a FutureWarning that names the new one.

    Args:
        name: str. The argument (named in the warning).
        value: the value received.
        renames: dict `{old name: new name}`.
    """
    if isinstance(value, str) and value in renames:
        new = renames[value]
        warnings.warn(f"`{name}={value!r}` was renamed {new!r}: it works as {new!r}, but write {name}={new!r} "
                      "(a file saved again holds the new name).", FutureWarning, stacklevel=3)
        return new
    return value
