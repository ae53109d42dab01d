"""`manage.py chaindemo`: token activity on a local dev chain, for the demo.

Deploys the demo token factory, links the chain's second dev account to a
user, then has that account create a token and send some of it. watchChain
turns both into notifications for the user.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from quickdapp.dapp.models import Wallet

ARTIFACTS = Path(settings.BASE_DIR) / "contracts" / "build"


class Command(BaseCommand):
    help = (
        "On a local dev chain (anvil), create a token through the demo factory "
        "and transfer some of it from a wallet linked to USER."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("user", help="Username the wallet is linked to.")

    def handle(self, *args: Any, **options: Any) -> None:
        from web3 import HTTPProvider, Web3
        from web3.logs import DISCARD

        if not settings.CHAIN_RPC_URL:
            raise CommandError("CHAIN_RPC_URL is not set: start anvil and set it")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user named {options['user']!r}")
        w3 = Web3(HTTPProvider(settings.CHAIN_RPC_URL))
        deployer, holder, receiver = w3.eth.accounts[:3]
        Wallet.objects.get_or_create(address=holder.lower(), defaults={"user": user})
        factory = _deploy(w3, "DemoTokenFactory", deployer)
        created = factory.functions.erc20NewToken("Demo", "DEMO", 10**24)
        receipt = _wait(w3, created.transact({"from": holder}))
        [event] = factory.events.ERC20NewToken().process_receipt(
            receipt, errors=DISCARD
        )
        token = w3.eth.contract(
            address=event["args"]["token"], abi=_artifact("DemoToken")["abi"]
        )
        _wait(
            w3,
            token.functions.transfer(receiver, 15 * 10**17).transact({"from": holder}),
        )
        self.stdout.write(
            f"Linked {holder} to {user}; it created DEMO at {token.address} "
            f"(factory {factory.address}) and sent 1.5 DEMO to {receiver}.\n"
            "watchChain notifies both within 30 s: see Notifications in the admin."
        )


def _artifact(name: str) -> dict[str, Any]:
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def _wait(w3: Any, tx_hash: Any) -> Any:
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)


def _deploy(w3: Any, name: str, sender: str) -> Any:
    artifact = _artifact(name)
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = _wait(w3, contract.constructor().transact({"from": sender}))
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
