"""The chain settings, read and checked in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import conf
from ..exceptions import PermanentJobError


class ChainConfigurationError(PermanentJobError):
    """A chain setting has a value the chain jobs cannot use."""


@dataclass(frozen=True)
class ChainSettings:
    rpc_url: str
    chain_id: int | None
    # Never shown: kept out of repr so that no log or traceback can print it.
    wallet_key: str | None = field(repr=False)
    confirmations: int
    blocks_per_run: int
    rpc_timeout: float  # seconds
    start_block: int | None


def _whole(name: str, minimum: int, optional: bool = False) -> int | None:
    raw = conf.get(name)
    if raw is None or raw == "":
        if optional:
            return None
        raise ChainConfigurationError(f"{name} is not set")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = minimum - 1
    if value < minimum or isinstance(raw, bool | float):
        raise ChainConfigurationError(
            f"{name} is {raw!r}: give a whole number, {minimum} or more"
        )
    return value


def _seconds(name: str) -> float:
    raw = conf.get(name)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = 0.0
    if not value > 0:
        raise ChainConfigurationError(
            f"{name} is {raw!r}: give a number of seconds above 0"
        )
    return value


def load() -> ChainSettings:
    """The settings in force; ChainConfigurationError naming a bad one."""
    url = conf.get("CHAIN_RPC_URL")
    if not url:
        raise ChainConfigurationError(
            "CHAIN_RPC_URL is not set: give the JSON-RPC URL of a node, "
            "e.g. http://127.0.0.1:8545"
        )
    return ChainSettings(
        rpc_url=str(url),
        chain_id=_whole("CHAIN_ID", 1, optional=True),
        wallet_key=conf.get("SERVER_WALLET_PRIVATE_KEY") or None,
        confirmations=_whole("CHAIN_CONFIRMATIONS", 0),
        blocks_per_run=_whole("CHAIN_BLOCKS_PER_RUN", 1),
        rpc_timeout=_seconds("CHAIN_RPC_TIMEOUT"),
        start_block=_whole("CHAIN_START_BLOCK", 0, optional=True),
    )


def problems() -> list[str]:
    """What is wrong with the chain settings, for the system checks."""
    if not conf.get("CHAIN_RPC_URL"):
        return []
    try:
        load()
    except ChainConfigurationError as error:
        return [str(error)]
    return []


def public_url(url: Any) -> str:
    """`url` without its path and credentials, which may hold an API key."""
    from urllib.parse import urlsplit

    parts = urlsplit(str(url))
    if not parts.scheme or not parts.hostname:
        return "(a URL that cannot be parsed)"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"
