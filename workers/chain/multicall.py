"""deployMulticall3: put Multicall3 at its canonical address on the chain.

The contract is created by a published, presigned transaction (no chain id,
so it is valid on every chain) from a deployer that holds nothing else. To
send it, the deployer needs 0.1 ETH: the server wallet tops it up first, and
only after every check that could make that money useless has passed.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidJobDataError, PermanentJobError
from ..models import WorkerJob
from . import client
from . import conf as chain_conf
from .conf import ChainConfigurationError

if TYPE_CHECKING:
    from web3 import Web3

MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
DEPLOYER = "0x05f32B3cC3888453ff71B01135B34FF8e41263F2"
DEPLOYER_FUNDS_WEI = 10**17  # 0.1 ETH: gas limit 1,000,000 at 100 gwei
TRANSFER_GAS = 21_000
# Seconds to wait for a transaction to be mined.
RECEIPT_TIMEOUT = 120
# web3_clientVersion prefix of development nodes -> prefix of their dev methods.
DEV_NODES = {"anvil": "anvil", "hardhatnetwork": "hardhat"}
# How nodes word a refusal for lack of funds (geth and anvil; hardhat).
LACK_OF_FUNDS = ("insufficient funds", "enough funds")


class DeploymentError(PermanentJobError):
    """Multicall3 could not be deployed; the message says why."""


def presigned_transaction() -> str:
    """The published transaction that creates Multicall3, as 0x-hex."""
    text = resources.files(__package__).joinpath("data/multicall3-presigned-tx.hex")
    raw = text.read_text().strip()
    return raw if raw.startswith("0x") else "0x" + raw


def run(job: WorkerJob, log: logging.LoggerAdapter) -> dict[str, Any]:
    """Deploy Multicall3 unless it is there; with forceRedeploy, deploy anew."""
    force = _force_redeploy(job.data)
    settings = chain_conf.load()
    w3 = client.connect(settings)
    result: dict[str, Any] = {"address": MULTICALL3, "forced": force}
    # Everything that can fail is checked before anything changes: a forced
    # redeploy that stopped after the reset would leave Multicall3 wiped.
    presigned = presigned_transaction()
    if force:
        dev_prefix = _dev_method_prefix(settings, w3)
        missing = DEPLOYER_FUNDS_WEI  # the reset empties the deployer
    else:
        if _code_size(settings, w3):
            log.info("Multicall3 is already deployed", extra={"address": MULTICALL3})
            return {**result, "deployed": False, "alreadyDeployed": True}
        _check_deployer_nonce(settings, w3)
        balance = client.call(settings, lambda: w3.eth.get_balance(DEPLOYER))
        missing = DEPLOYER_FUNDS_WEI - balance
    _check_gas_price(settings, w3, presigned)
    payer = _check_payer(settings, w3, missing)
    if not force:
        return {**result, **_deploy(settings, w3, log, presigned, payer, missing)}
    saved = _reset(settings, w3, dev_prefix)
    log.warning("Reset Multicall3 and its deployer for a redeploy")
    try:
        return {**result, **_deploy(settings, w3, log, presigned, payer, missing)}
    except Exception:
        _restore(settings, w3, dev_prefix, saved, log)
        raise


def _deploy(
    settings: chain_conf.ChainSettings,
    w3: Web3,
    log: logging.LoggerAdapter,
    presigned: str,
    payer: tuple[Any, int] | None,
    missing: int,
) -> dict[str, Any]:
    """Fund the deployer if it must be, send the presigned transaction, confirm.

    Before any money moves, the presigned transaction is offered to the node
    while the deployer cannot yet pay for it: a node that refuses it for any
    other reason (its gas price, or no replay protection) refuses it now.
    """
    offered = _offer(settings, w3, presigned) if payer is not None else None
    funding = _top_up_deployer(settings, w3, log, payer, missing)
    tx_hash = offered or _broadcast(settings, w3, presigned)
    deployment = _await(settings, w3, tx_hash)
    size = _code_size(settings, w3)
    if not size:
        raise DeploymentError(
            f"the presigned transaction {deployment['hash']} was sent, but "
            f"there is still no code at {MULTICALL3}"
        )
    log.info(
        "Deployed Multicall3",
        extra={"address": MULTICALL3, "tx": deployment["hash"], "code_size": size},
    )
    return {
        "deployed": True,
        "alreadyDeployed": False,
        "transactions": {"funding": funding, "deployment": deployment},
        "gasUsed": (funding or {}).get("gasUsed", 0) + deployment["gasUsed"],
    }


def _force_redeploy(data: Any) -> bool:
    if data in (None, {}):
        return False
    if not isinstance(data, dict):
        raise InvalidJobDataError(
            f"deployMulticall3 takes an object like {{'forceRedeploy': true}}, "
            f"not {data!r}"
        )
    force = data.get("forceRedeploy", False)
    if not isinstance(force, bool):
        raise InvalidJobDataError(f"forceRedeploy must be true or false, not {force!r}")
    return force


def _code_size(settings: chain_conf.ChainSettings, w3: Web3) -> int:
    return len(client.call(settings, lambda: w3.eth.get_code(MULTICALL3)))


def _dev_method_prefix(settings: chain_conf.ChainSettings, w3: Web3) -> str:
    """The prefix of the node's dev methods; DeploymentError if it has none."""
    version = client.client_version(settings, w3)
    name = version.split("/", 1)[0].strip().lower()
    if name not in DEV_NODES:
        raise DeploymentError(
            f"forceRedeploy needs a development chain (anvil or hardhat); the "
            f"node is {version!r}: nothing was sent"
        )
    return DEV_NODES[name]


def _reset(settings: chain_conf.ChainSettings, w3: Web3, prefix: str) -> dict[str, Any]:
    """Clear Multicall3's code and the deployer's nonce and balance.

    Returns what was cleared, for _restore().
    """
    saved = {
        "code": "0x"
        + bytes(client.call(settings, lambda: w3.eth.get_code(MULTICALL3))).hex(),
        "nonce": client.call(
            settings, lambda: w3.eth.get_transaction_count(MULTICALL3)
        ),
        "deployer_nonce": client.call(
            settings, lambda: w3.eth.get_transaction_count(DEPLOYER)
        ),
    }
    for method, params in (
        ("setCode", (MULTICALL3, "0x")),
        ("setNonce", (MULTICALL3, "0x0")),
        ("setNonce", (DEPLOYER, "0x0")),
        ("setBalance", (DEPLOYER, "0x0")),
    ):
        client.rpc(settings, w3, f"{prefix}_{method}", *params)
    return saved


def _restore(
    settings: chain_conf.ChainSettings,
    w3: Web3,
    prefix: str,
    saved: dict[str, Any],
    log: logging.LoggerAdapter,
) -> None:
    """Put back the code and nonces a failed redeploy cleared."""
    try:
        for method, params in (
            ("setCode", (MULTICALL3, saved["code"])),
            ("setNonce", (MULTICALL3, hex(saved["nonce"]))),
            ("setNonce", (DEPLOYER, hex(saved["deployer_nonce"]))),
        ):
            client.rpc(settings, w3, f"{prefix}_{method}", *params)
    except (OSError, RuntimeError) as error:
        log.error(
            "The redeploy failed and Multicall3 could not be restored: %s",
            error,
            extra={"address": MULTICALL3},
        )
        return
    log.warning(
        "The redeploy failed; restored Multicall3 as it was",
        extra={"address": MULTICALL3},
    )


def _check_gas_price(
    settings: chain_conf.ChainSettings, w3: Web3, presigned: str
) -> None:
    """Fail, sending nothing, if the chain's base fee is above what the
    presigned transaction pays (its gas price is part of the signature)."""
    import rlp

    gas_price = int.from_bytes(rlp.decode(bytes.fromhex(presigned[2:]))[1], "big")
    block = client.call(settings, lambda: w3.eth.get_block("latest"))
    base_fee = block.get("baseFeePerGas")
    if base_fee is not None and base_fee > gas_price:
        raise DeploymentError(
            f"the presigned transaction pays {gas_price} wei a gas, below the "
            f"chain's base fee of {base_fee} wei: the node would refuse it; "
            "nothing was sent (deploy when the base fee is lower)"
        )


def _check_deployer_nonce(settings: chain_conf.ChainSettings, w3: Web3) -> None:
    nonce = client.call(settings, lambda: w3.eth.get_transaction_count(DEPLOYER))
    if nonce:
        raise DeploymentError(
            f"the deployer {DEPLOYER} has nonce {nonce}, but the presigned "
            "transaction needs nonce 0: Multicall3 cannot be created at its "
            "canonical address on this chain; nothing was sent"
        )


def _check_payer(
    settings: chain_conf.ChainSettings, w3: Web3, missing: int
) -> tuple[Any, int] | None:
    """The server wallet and gas price to send `missing` wei; None if nothing is.

    Fails, sending nothing, if the key is missing or invalid or the wallet
    cannot pay for the transfer and its gas.
    """
    from eth_account import Account

    if missing <= 0:
        return None
    if not settings.wallet_key:
        raise ChainConfigurationError(
            f"the deployer {DEPLOYER} needs {missing} wei more to send the "
            "presigned transaction, and SERVER_WALLET_PRIVATE_KEY is not set"
        )
    chain_conf.check_wallet_key(settings.wallet_key)
    try:
        wallet = Account.from_key(settings.wallet_key)
    except (ValueError, TypeError):
        # The key itself must not end up in the job's result.
        raise ChainConfigurationError(
            "SERVER_WALLET_PRIVATE_KEY is not a valid private key: give 32 "
            "bytes as 64 hex digits"
        ) from None
    gas_price = client.call(settings, lambda: w3.eth.gas_price)
    available = client.call(settings, lambda: w3.eth.get_balance(wallet.address))
    needed = missing + gas_price * TRANSFER_GAS
    if available < needed:
        raise DeploymentError(
            f"the server wallet {wallet.address} has {available} wei; topping "
            f"up the deployer needs {needed} wei (gas included); nothing was sent"
        )
    return wallet, gas_price


def _top_up_deployer(
    settings: chain_conf.ChainSettings,
    w3: Web3,
    log: logging.LoggerAdapter,
    payer: tuple[Any, int] | None,
    missing: int,
) -> dict[str, Any] | None:
    """Send the deployer what it lacks of 0.1 ETH; the transaction, or None."""
    if payer is None:
        return None
    wallet, gas_price = payer
    nonce = client.call(
        settings, lambda: w3.eth.get_transaction_count(wallet.address, "pending")
    )
    chain_id = client.call(settings, lambda: w3.eth.chain_id)
    signed = wallet.sign_transaction(
        {
            "to": DEPLOYER,
            "value": missing,
            "gas": TRANSFER_GAS,
            "gasPrice": gas_price,
            "nonce": nonce,
            "chainId": chain_id,
        }
    )
    receipt = _send(settings, w3, "0x" + bytes(signed.raw_transaction).hex())
    log.info(
        "Topped up the Multicall3 deployer",
        extra={"wallet": wallet.address, "wei": missing, "tx": receipt["hash"]},
    )
    return receipt


def _offer(
    settings: chain_conf.ChainSettings, w3: Web3, presigned: str
) -> bytes | None:
    """Offer the presigned transaction while the deployer cannot pay for it.

    The refusal expected is for lack of funds; None then. A node that takes
    it to send later gives its hash. Any other refusal is a DeploymentError.
    """
    from web3.exceptions import Web3RPCError

    try:
        return client.call(settings, lambda: w3.eth.send_raw_transaction(presigned))
    except Web3RPCError as error:
        message = str(error.message or error)
        if any(words in message.lower() for words in LACK_OF_FUNDS):
            return None
        raise DeploymentError(
            f"the node refuses the presigned transaction: {message}; nothing was sent"
        ) from None


def _send(settings: chain_conf.ChainSettings, w3: Web3, raw: str) -> dict[str, Any]:
    """Broadcast a signed transaction, wait for it; its hash and gas used."""
    return _await(settings, w3, _broadcast(settings, w3, raw))


def _broadcast(settings: chain_conf.ChainSettings, w3: Web3, raw: str) -> bytes:
    from web3.exceptions import Web3RPCError

    try:
        return client.call(settings, lambda: w3.eth.send_raw_transaction(raw))
    except Web3RPCError as error:
        raise DeploymentError(
            f"the node refused the transaction: {error.message or error}"
        ) from None


def _await(
    settings: chain_conf.ChainSettings, w3: Web3, tx_hash: bytes
) -> dict[str, Any]:
    """Wait for a sent transaction to be mined; its hash and gas used."""
    from web3.exceptions import TimeExhausted

    try:
        receipt = client.call(
            settings,
            lambda: w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=RECEIPT_TIMEOUT
            ),
        )
    except TimeExhausted:
        raise DeploymentError(
            f"transaction 0x{bytes(tx_hash).hex()} was not mined within "
            f"{RECEIPT_TIMEOUT} s"
        ) from None
    if receipt["status"] != 1:
        raise DeploymentError(f"transaction 0x{bytes(tx_hash).hex()} reverted")
    return {"hash": "0x" + bytes(tx_hash).hex(), "gasUsed": receipt["gasUsed"]}
