"""Token amounts as people read them, computed exactly."""

from __future__ import annotations


def format_units(amount: int, decimals: int) -> str:
    """`amount` base units as a decimal number: format_units(1500, 3) == "1.5".

    Integer arithmetic only, so that no digit of a uint256 is lost.
    """
    if amount < 0 or decimals < 0:
        raise ValueError(f"amount {amount!r} and decimals {decimals!r} must be >= 0")
    whole, fraction = divmod(amount, 10**decimals)
    if not fraction:
        return str(whole)
    return f"{whole}.{str(fraction).zfill(decimals).rstrip('0')}"
