"""Logs no well-behaved contract emits must not stop watchChain."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from eth_abi import encode
from eth_utils import event_abi_to_log_topic
from web3.logs import DISCARD

from quickdapp.dapp.chain_filters import TOKEN_TRANSFERRED
from quickdapp.dapp.models import Notification, Token, Wallet
from workers.chain import watch
from workers.chain.filters import ChainEvent, event_abi, registry
from workers.chain.models import ChainCheckpoint
from workers.models import WorkerJob

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

LOG = logging.LoggerAdapter(logging.getLogger("tests.chain"), {})


def watch_once() -> dict[str, Any]:
    return watch.run(WorkerJob(type="watchChain"), LOG)


@pytest.fixture
def alice(chain: Any) -> Any:
    user = get_user_model().objects.create_user("alice")
    Wallet.objects.create(user=user, address=chain.accounts[1])
    return user


def emitter(chain: Any) -> Any:
    """A contract that emits any log it is asked to."""
    return chain.deploy("Emitter", sender=7)


def send(chain: Any, call: Any) -> str:
    tx = call.transact({"from": chain.accounts[7], "gas": 1_000_000})
    assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    return "0x" + bytes(tx).hex()


def topic(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def test_undecodable_logs_are_skipped_with_a_warning(
    chain_settings, chain, alice, caplog
):
    token = chain.token(holder=1)
    hostile = emitter(chain)
    seen: list[ChainEvent] = []
    registry.register(
        TOKEN_TRANSFERRED, lambda event, log: seen.append(event), name="z.seen"
    )
    try:
        watch_once()
        start = ChainCheckpoint.objects.get().block_number
        signature = event_abi_to_log_topic(event_abi(TOKEN_TRANSFERRED))
        sender, to = topic(chain.accounts[1]), topic(chain.accounts[3])
        bad_utf8 = encode(
            ["uint256", "bytes", "bytes", "uint8"], [1, b"\xff\xfe", b"X", 0]
        )
        bad = [
            send(chain, hostile.functions.raw3(signature, sender, to, bad_utf8)),
            send(chain, hostile.functions.raw3(signature, sender, to, b"\x01" * 5)),
        ]
        good = chain.transfer(token, sender=1, to=3, value=5)
        caplog.set_level(logging.WARNING, logger="tests.chain")
        result = watch_once()
    finally:
        registry.unregister("z.seen")

    assert result["handled"] == 2  # the genuine log, once for each filter
    assert ChainCheckpoint.objects.get().block_number > start
    assert [event.transaction_hash for event in seen] == [good]
    assert [n.data["value"] for n in Notification.objects.filter(user=alice)] == ["5"]
    skipped = [r for r in caplog.records if "cannot be decoded" in r.getMessage()]
    assert len(skipped) == 4  # two bad logs, seen by two filters
    for record in skipped:
        assert record.levelno == logging.WARNING
        assert f"chain {chain.w3.eth.chain_id}" in record.getMessage()
    messages = "\n".join(r.getMessage() for r in skipped)
    for tx_hash in bad:
        receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
        assert f"block {receipt['blockNumber']}, transaction {tx_hash}" in messages
    assert "log index 0: " in messages
    assert "UnicodeDecodeError" in messages
    assert watch_once()["handled"] == 0


def created_token(chain: Any, factory: Any, tx_hash: str) -> Any:
    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    [event] = factory.events.ERC20NewToken().process_receipt(receipt, errors=DISCARD)
    return chain.w3.eth.contract(
        address=event["args"]["token"], abi=chain.artifact("DemoToken")["abi"]
    )


def test_nul_characters_in_a_token_name_are_dropped(chain_settings, chain, alice):
    factory = chain.deploy("DemoTokenFactory")
    watch_once()
    created = chain.create_token(factory, creator=1, name="Nul\x00Coin", supply=10**19)
    token = created_token(chain, factory, created)
    chain.transfer(token, sender=1, to=3, value=10**18)
    assert watch_once()["handled"] == 2
    made, sent = Notification.objects.filter(user=alice).order_by("id")
    assert made.message == f"You created the token NulCoin (NUL) at {token.address}"
    assert sent.message == f"You sent 1 NUL to {chain.accounts[3]}"
    assert (sent.data["name"], sent.data["symbol"]) == ("NulCoin", "NUL")
    known = Token.objects.get()
    assert (known.address, known.name, known.symbol) == (
        token.address.lower(),
        "NulCoin",
        "NUL",
    )
    assert known.creator == chain.accounts[1].lower()


def test_transfers_of_unknown_contracts_are_ignored(chain_settings, chain, alice):
    factory = chain.deploy("DemoTokenFactory")
    rogue_factory = chain.deploy("DemoTokenFactory", sender=7)
    chain_settings.DAPP_TOKEN_FACTORY_ADDRESS = factory.address
    hostile = emitter(chain)
    watch_once()
    # A contract that is no token claims alice sent a fortune.
    send(
        chain,
        hostile.functions.fake(
            chain.accounts[1], chain.accounts[7], 10**24, "Tether USD", "USDT", 6
        ),
    )
    # A token from another factory, and one deployed on its own.
    rogue = created_token(
        chain, rogue_factory, chain.create_token(rogue_factory, 1, "Rogue", 10**18)
    )
    loner = chain.deploy("DemoToken", "Loner", "LONE", 10**18, chain.accounts[1])
    genuine = created_token(
        chain, factory, chain.create_token(factory, 1, "Real", 10**18)
    )
    for token in (rogue, loner, genuine):
        chain.transfer(token, sender=1, to=3, value=7)
    watch_once()
    rows = Notification.objects.filter(user=alice).order_by("id")
    assert [(n.kind, n.data["token"]) for n in rows] == [
        ("token_created", genuine.address),
        ("token_transfer", genuine.address),
    ]
    assert list(Token.objects.values_list("address", flat=True)) == [
        genuine.address.lower()
    ]
