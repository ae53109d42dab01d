"""The chain settings, read and checked in one place."""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .. import conf
from ..exceptions import PermanentJobError

# A private key is a number from 1 to the order of the secp256k1 curve, less 1.
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


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
    if not 0 < value < math.inf:
        raise ChainConfigurationError(
            f"{name} is {raw!r}: give a finite number of seconds above 0"
        )
    return value


def _rpc_url() -> str:
    url = conf.get("CHAIN_RPC_URL")
    if not url:
        raise ChainConfigurationError(
            "CHAIN_RPC_URL is not set: give the JSON-RPC URL of a node, "
            "e.g. http://127.0.0.1:8545"
        )
    advice = (
        "give an http:// or https:// URL of a node's JSON-RPC endpoint, e.g. "
        "http://127.0.0.1:8545"
    )
    try:
        parts = urlsplit(str(url))
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        # The URL, and so the parser's message, may hold a key or password.
        raise ChainConfigurationError(
            f"CHAIN_RPC_URL cannot be read (a bad port, bracket or character): {advice}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        scheme = f"the scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ChainConfigurationError(
            f"CHAIN_RPC_URL has {scheme} or no host: {advice}"
        )
    return str(url)


def check_wallet_key(key: str) -> None:
    """ChainConfigurationError if `key` is not 32 bytes of hex, never naming it.

    (eth_account pads a short key with zeros: a digit lost in copying would
    otherwise silently name another wallet.)
    """
    digits = str(key).removeprefix("0x")
    if (
        len(digits) != 64
        or not all(c in string.hexdigits for c in digits)
        or not 0 < int(digits, 16) < SECP256K1_ORDER
    ):
        # The key itself is never repeated in a message.
        raise ChainConfigurationError(
            "SERVER_WALLET_PRIVATE_KEY is not a valid private key: give 32 "
            f"bytes as 64 hex digits, with or without 0x, not zero (it has "
            f"{len(digits)} characters)"
        )


def load() -> ChainSettings:
    """The settings in force; ChainConfigurationError naming a bad one."""
    return ChainSettings(
        rpc_url=_rpc_url(),
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
        settings = load()
        if settings.wallet_key:
            check_wallet_key(settings.wallet_key)
    except ChainConfigurationError as error:
        return [str(error)]
    return []


def public_url(url: Any) -> str:
    """`url` without its path and credentials, which may hold an API key."""
    try:
        parts = urlsplit(str(url))
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a URL that cannot be parsed)"
    if not parts.scheme or not parts.hostname:
        return "(a URL that cannot be parsed)"
    return f"{parts.scheme}://{parts.hostname}{port}"
