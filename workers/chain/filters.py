"""The chain-filter registry: which events watchChain fetches, and who handles them.

Like job types, filters are registered by apps, in a `chain_filters` module
that watchChain imports for every installed app before its first run::

    from workers.chain.filters import register

    @register("Transfer(address indexed from, address indexed to, uint256 value)")
    def on_transfer(event, log):
        ...

A handler gets a ChainEvent and a logger. It runs inside the transaction that
records the log as processed and moves the checkpoint: its database writes
commit with them or not at all. It should not call the node.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EventHandler = Callable[["ChainEvent", logging.LoggerAdapter], None]
Address = str | Callable[[], "str | None"] | None

_SIGNATURE = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")
_PARAMETER = re.compile(r"^(\w+(?:\[\d*\])*)(\s+indexed)?\s+(\w+)$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log, as a handler sees it."""

    chain_id: int
    filter: str
    event: str
    args: dict[str, Any]
    address: str
    block_number: int
    block_hash: str
    transaction_hash: str
    log_index: int


@dataclass(frozen=True)
class ChainFilter:
    """An event to fetch, from one contract or from any, and its handler."""

    name: str
    abi: dict[str, Any]
    handler: EventHandler
    # A checksummed address, a callable giving one (read at each run, so it
    # can come from settings), or None for every contract.
    address: Address = field(default=None)

    def contract_address(self) -> str | None:
        """The contract to fetch from, or None for every contract.

        ChainConfigurationError (permanent) if it is not an address.
        """
        from .conf import ChainConfigurationError

        address = self.address() if callable(self.address) else self.address
        if address is not None and not is_address(address):
            raise ChainConfigurationError(
                f"the contract address of chain filter {self.name!r} is "
                f"{address!r}: give 0x and 40 hex digits, or None for every "
                "contract"
            )
        return address


def is_address(value: Any) -> bool:
    """True for 0x and 40 hex digits (any case: checksums are not enforced)."""
    return bool(_ADDRESS.match(str(value)))


def event_abi(signature: str) -> dict[str, Any]:
    """The ABI of an event given as Solidity declares it.

    `"Transfer(address indexed from, address indexed to, uint256 value)"`.
    Only elementary types and their arrays; give a dict ABI for tuples.
    """
    match = _SIGNATURE.match(signature)
    if not match:
        raise ValueError(f"{signature!r} is not an event signature like 'Name(...)'")
    inputs = []
    for part in filter(None, (p.strip() for p in match[2].split(","))):
        param = _PARAMETER.match(part)
        if not param:
            raise ValueError(
                f"parameter {part!r} of {signature!r} is not '<type> [indexed] <name>'"
            )
        inputs.append({"name": param[3], "type": param[1], "indexed": bool(param[2])})
    return {"type": "event", "name": match[1], "anonymous": False, "inputs": inputs}


class ChainFilterRegistry:
    """Chain filters by name."""

    def __init__(self) -> None:
        self._filters: dict[str, ChainFilter] = {}

    def register(
        self,
        event: str | dict[str, Any],
        handler: EventHandler | None = None,
        *,
        name: str | None = None,
        address: Address = None,
    ) -> Any:
        """Register `handler` for `event`; without a handler, act as a decorator.

        `event` is a Solidity event signature or an ABI dict. `name` defaults
        to the handler's dotted path; it identifies the filter's processed
        logs, so keep it stable.
        """
        abi = event_abi(event) if isinstance(event, str) else dict(event)
        if abi.get("type") != "event" or not abi.get("name"):
            raise ValueError(f"{event!r} is not an event ABI")

        def add(func: EventHandler) -> EventHandler:
            key = name or f"{func.__module__}.{func.__qualname__}"
            existing = self._filters.get(key)
            if existing is not None and existing.handler is not func:
                raise ValueError(f"chain filter {key!r} is already registered")
            self._filters[key] = ChainFilter(key, abi, func, address)
            return func

        return add if handler is None else add(handler)

    def unregister(self, name: str) -> None:
        """Forget the filter `name` (for tests and reloads)."""
        self._filters.pop(name, None)

    def all(self) -> list[ChainFilter]:
        """The registered filters, by name."""
        return [self._filters[key] for key in sorted(self._filters)]


registry = ChainFilterRegistry()
register = registry.register


def discover() -> None:
    """Import the `chain_filters` module of every installed app."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("chain_filters")
