"""Reading settings from the environment: each parser is strict, so a typo stops startup instead of surfacing later.

Plain functions rather than a library such as environs: they are few, and each error names the variable and the
value it refused.
"""

import os
import re

from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool) -> bool:
    """Read a 0/1 style flag; anything unrecognised is a configuration error, not a silent False."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 0 or 1, not {value!r}")


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated list, ignoring blanks."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_optional_bool(name: str) -> bool | None:
    """Read a 0/1 flag that may be left unset, meaning "decide for me"."""
    return env_bool(name, False) if os.environ.get(name) else None


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """Read a whole number; a typo stops startup instead of surfacing later."""
    value = os.environ.get(name) or str(default)
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_float(name: str, default: float, *, minimum: float = 0.0, maximum: float = float("inf")) -> float:
    """Read a finite number within bounds."""
    value = os.environ.get(name) or str(default)
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if not minimum <= number <= maximum or number == float("inf"):
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, not {value!r}")
    return number


def env_seconds_range(name: str, default: str) -> tuple[float, float]:
    """Read '2' or '1-5' (uniform range) as (low, high) seconds."""
    value = os.environ.get(name) or default
    low, _, high = value.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must look like '2' or '1-5', not {value!r}") from None
    if not all(0 <= bound < float("inf") for bound in bounds) or bounds[0] > bounds[1]:
        raise ImproperlyConfigured(f"{name} must be finite seconds with low <= high, not {value!r}")
    return bounds


def env_rate(name: str, default: str | None = None) -> str | None:
    """Read a DRF throttle rate such as 100/s, 5000/min or 10/hour; unset (and no default) means no limit."""
    value = os.environ.get(name) or default
    if value and not re.fullmatch(r"[1-9]\d*/(s|sec|m|min|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name} must look like 100/s, 5000/min or 10/hour, not {value!r}")
    return value
