"""The dapp's chain filters: token events become notifications for their users.

Only tokens the dapp knows are trusted: those its factory created (recorded
here from ERC20NewToken) and those added in the admin. Any contract can emit
TokenTransferred naming any sender; the others' logs are ignored.

watchChain imports this module; each handler runs inside the transaction that
records the log as processed, so a notification is created exactly once.
"""

from __future__ import annotations

import logging

from django.conf import settings

from workers.chain.conf import ChainConfigurationError
from workers.chain.filters import ChainEvent, is_address, register

from .models import Notification, Token, Wallet
from .units import format_units

TOKEN_TRANSFERRED = (
    "TokenTransferred(address indexed from, address indexed to, uint256 value, "
    "string name, string symbol, uint8 decimals)"
)
ERC20_NEW_TOKEN = (
    "ERC20NewToken(address indexed token, string name, string symbol, "
    "address indexed creator, uint256 initialSupply)"
)


def text(value: str) -> str:
    """A string from the chain as PostgreSQL stores it: without NUL characters.

    Token names and symbols are whatever their contract says; PostgreSQL
    refuses NUL in text and JSON, and a handler that fails on one log fails
    every run after it.
    """
    return value.replace("\x00", "")


def token_factory_address() -> str | None:
    """The factory whose tokens are trusted; None: any contract's (dev chains)."""
    address = getattr(settings, "DAPP_TOKEN_FACTORY_ADDRESS", None) or None
    if address is not None and not is_address(address):
        raise ChainConfigurationError(
            f"DAPP_TOKEN_FACTORY_ADDRESS is {address!r}: give the factory's "
            "address (0x and 40 hex digits), or leave it unset on a "
            "development chain"
        )
    return address


@register(TOKEN_TRANSFERRED, name="dapp.tokenTransferred")
def notify_sender(event: ChainEvent, log: logging.LoggerAdapter) -> None:
    """Tell the user whose wallet sent a known token what was sent."""
    if not Token.is_known(event.address):
        log.debug(
            "Ignored a transfer of an unknown token", extra={"token": event.address}
        )
        return
    args = {**event.args}
    args["name"], args["symbol"] = text(args["name"]), text(args["symbol"])
    user = Wallet.owner_of(args["from"])
    if user is None:
        return
    amount = format_units(args["value"], args["decimals"])
    Notification.objects.create(
        user=user,
        kind=Notification.Kind.TOKEN_TRANSFER,
        message=f"You sent {amount} {args['symbol']} to {args['to']}",
        data={
            "token": event.address,
            "from": args["from"],
            "to": args["to"],
            "value": str(args["value"]),
            "name": args["name"],
            "symbol": args["symbol"],
            "decimals": args["decimals"],
        },
        chain_id=event.chain_id,
        transaction_hash=event.transaction_hash,
    )
    log.info("Notified a token transfer", extra={"user": user.pk})


@register(ERC20_NEW_TOKEN, name="dapp.erc20NewToken", address=token_factory_address)
def notify_creator(event: ChainEvent, log: logging.LoggerAdapter) -> None:
    """Trust a token the factory created; tell the user whose wallet created it."""
    args = {**event.args}
    args["name"], args["symbol"] = text(args["name"]), text(args["symbol"])
    Token.objects.get_or_create(
        address=args["token"].lower(),
        defaults={
            "name": args["name"],
            "symbol": args["symbol"],
            "creator": args["creator"].lower(),
        },
    )
    user = Wallet.owner_of(args["creator"])
    if user is None:
        return
    Notification.objects.create(
        user=user,
        kind=Notification.Kind.TOKEN_CREATED,
        message=f"You created the token {args['name']} ({args['symbol']}) "
        f"at {args['token']}",
        data={
            "token": args["token"],
            "name": args["name"],
            "symbol": args["symbol"],
            "creator": args["creator"],
            "initialSupply": str(args["initialSupply"]),
        },
        chain_id=event.chain_id,
        transaction_hash=event.transaction_hash,
    )
    log.info("Notified a new token", extra={"user": user.pk})
