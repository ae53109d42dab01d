"""deployMulticall3 against a real anvil."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from workers import execution
from workers.chain import multicall
from workers.chain.conf import ChainConfigurationError
from workers.exceptions import InvalidJobDataError, PermanentJobError
from workers.models import WorkerJob

from .conftest import SERVER_WALLET_KEY, Chain

pytestmark = [pytest.mark.chain, pytest.mark.django_db]

LOG = logging.LoggerAdapter(logging.getLogger("tests.chain"), {})
AGGREGATE3_ABI = [
    {
        "type": "function",
        "name": "aggregate3",
        "stateMutability": "payable",
        "inputs": [
            {
                "name": "calls",
                "type": "tuple[]",
                "components": [
                    {"name": "target", "type": "address"},
                    {"name": "allowFailure", "type": "bool"},
                    {"name": "callData", "type": "bytes"},
                ],
            }
        ],
        "outputs": [
            {
                "name": "returnData",
                "type": "tuple[]",
                "components": [
                    {"name": "success", "type": "bool"},
                    {"name": "returnData", "type": "bytes"},
                ],
            }
        ],
    }
]
GET_BLOCK_NUMBER = "0x42cbb15c"  # getBlockNumber()


def deploy(data: Any = None) -> dict[str, Any]:
    return multicall.run(WorkerJob(type="deployMulticall3", data=data or {}), LOG)


def code_size(chain: Chain) -> int:
    return len(chain.w3.eth.get_code(multicall.MULTICALL3))


def test_deploys_on_a_fresh_chain_and_aggregate3_works(chain_settings, chain):
    assert code_size(chain) == 0
    result = deploy()
    assert result["deployed"] is True
    funding, deployment = (result["transactions"][k] for k in ("funding", "deployment"))
    assert funding["gasUsed"] == 21_000
    assert deployment["gasUsed"] == 873_016
    assert result["gasUsed"] == 21_000 + 873_016
    receipt = chain.w3.eth.get_transaction_receipt(deployment["hash"])
    assert receipt["from"] == multicall.DEPLOYER
    assert code_size(chain) == 3808

    contract = chain.w3.eth.contract(address=multicall.MULTICALL3, abi=AGGREGATE3_ABI)
    [(success, data)] = contract.functions.aggregate3(
        [(multicall.MULTICALL3, False, GET_BLOCK_NUMBER)]
    ).call()
    assert success and int.from_bytes(data, "big") == chain.head


def test_second_run_sends_nothing(chain_settings, chain):
    deploy()
    head, wallet_nonce = (
        chain.head,
        chain.w3.eth.get_transaction_count(chain.accounts[0]),
    )
    assert deploy() == {
        "address": multicall.MULTICALL3,
        "forced": False,
        "deployed": False,
        "alreadyDeployed": True,
    }
    assert chain.head == head
    assert chain.w3.eth.get_transaction_count(chain.accounts[0]) == wallet_nonce


def test_force_redeploy_on_anvil(chain_settings, chain):
    first = deploy()
    again = deploy({"forceRedeploy": True})
    assert again["deployed"] and again["forced"]
    # The presigned transaction is the same bytes: the same hash, mined anew.
    assert (
        again["transactions"]["deployment"]["hash"]
        == (first["transactions"]["deployment"]["hash"])
    )
    assert code_size(chain) == 3808


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (None, "SERVER_WALLET_PRIVATE_KEY is not set"),
        ("0x1234", "not a valid private key"),
        ("0x" + "11" * 32, "has 0 wei"),  # a valid key of an empty wallet
    ],
)
def test_a_failed_force_redeploy_leaves_multicall3_in_place(
    chain_settings, chain, key, error
):
    deploy()
    deployer_balance = chain.w3.eth.get_balance(multicall.DEPLOYER)
    chain_settings.SERVER_WALLET_PRIVATE_KEY = key
    with pytest.raises(PermanentJobError, match=error):
        deploy({"forceRedeploy": True})
    assert code_size(chain) == 3808
    assert chain.w3.eth.get_transaction_count(multicall.DEPLOYER) == 1
    assert chain.w3.eth.get_balance(multicall.DEPLOYER) == deployer_balance


def test_a_deployer_with_funds_needs_no_top_up(chain_settings, chain):
    chain.rpc("anvil_setBalance", multicall.DEPLOYER, hex(10**17))
    chain_settings.SERVER_WALLET_PRIVATE_KEY = None
    result = deploy()
    assert result["transactions"]["funding"] is None
    assert code_size(chain) == 3808


REPLAY_UNPROTECTED = "only replay-protected (EIP-155) transactions allowed over RPC"


@pytest.fixture
def proxy(anvil: Any) -> Iterator[Any]:
    """A proxy to anvil that can answer some methods as another node would.

    `proxy(replies)` starts one: `replies` maps a method to a function of the
    request's params giving a reply dict ({"result": ...} or {"error": ...}),
    or None to pass the request on; it returns the proxy's URL.
    """
    servers = []

    def start(replies: dict[str, Any]) -> str:
        class Proxy(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(body)
                answer = replies.get(request.get("method"), lambda params: None)
                own = answer(request.get("params"))
                if own is not None:
                    reply = json.dumps(
                        {"jsonrpc": "2.0", "id": request["id"], **own}
                    ).encode()
                else:
                    forwarded = urllib.request.Request(
                        anvil.url, body, {"Content-Type": "application/json"}
                    )
                    with urllib.request.urlopen(forwarded, timeout=5) as response:
                        reply = response.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def geth_lookalike(proxy: Any) -> str:
    """A node that answers web3_clientVersion as a production node."""
    return proxy({"web3_clientVersion": lambda params: {"result": "Geth/v1.14.0"}})


def refusing_unprotected(proxy: Any) -> str:
    """A node that refuses transactions without a chain id, as geth does."""
    presigned = multicall.presigned_transaction()

    def send(params: list[str]) -> dict[str, Any] | None:
        if params[0] == presigned:
            return {"error": {"code": -32000, "message": REPLAY_UNPROTECTED}}
        return None

    return proxy({"eth_sendRawTransaction": send})


def balances(chain: Chain) -> tuple[int, int]:
    return (
        chain.w3.eth.get_balance(chain.accounts[0]),
        chain.w3.eth.get_balance(multicall.DEPLOYER),
    )


def test_a_node_refusing_the_presigned_transaction_gets_no_funds(
    chain_settings, chain, proxy
):
    chain_settings.CHAIN_RPC_URL = refusing_unprotected(proxy)
    before = balances(chain)
    with pytest.raises(PermanentJobError, match="refuses the presigned transaction"):
        deploy()
    assert balances(chain) == before == (before[0], 0)
    assert code_size(chain) == 0


def test_a_base_fee_above_the_presigned_gas_price_sends_nothing(chain_settings, chain):
    chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(200 * 10**9))
    chain.mine()
    before = balances(chain)
    with pytest.raises(PermanentJobError, match="below the chain's base fee"):
        deploy()
    assert balances(chain) == before
    assert code_size(chain) == 0


def test_a_redeploy_refused_after_the_reset_restores_multicall3(
    chain_settings, chain, proxy, caplog
):
    deploy()
    chain_settings.CHAIN_RPC_URL = refusing_unprotected(proxy)
    with pytest.raises(PermanentJobError, match="refuses the presigned transaction"):
        deploy({"forceRedeploy": True})
    assert code_size(chain) == 3808
    assert chain.w3.eth.get_transaction_count(multicall.DEPLOYER) == 1
    assert "restored Multicall3 as it was" in caplog.text


def test_force_redeploy_elsewhere_fails_and_sends_nothing(
    chain_settings, chain, geth_lookalike
):
    deploy()
    chain_settings.CHAIN_RPC_URL = geth_lookalike
    head = chain.head
    with pytest.raises(PermanentJobError, match="needs a development chain"):
        deploy({"forceRedeploy": True})
    assert chain.head == head and code_size(chain) == 3808


def test_a_used_deployer_nonce_fails_before_any_funds_move(chain_settings, chain):
    chain.rpc("anvil_setNonce", multicall.DEPLOYER, "0x1")
    balance = chain.w3.eth.get_balance(chain.accounts[0])
    with pytest.raises(PermanentJobError, match="has nonce 1"):
        deploy()
    assert chain.w3.eth.get_balance(chain.accounts[0]) == balance
    assert chain.w3.eth.get_balance(multicall.DEPLOYER) == 0


def test_a_wallet_without_funds_is_a_clear_error(chain_settings, chain):
    from eth_account import Account

    empty = Account.create()
    chain_settings.SERVER_WALLET_PRIVATE_KEY = "0x" + bytes(empty.key).hex()
    with pytest.raises(PermanentJobError, match=f"{empty.address} has 0 wei"):
        deploy()
    assert code_size(chain) == 0


def test_without_a_wallet_key_the_error_names_the_setting(chain_settings):
    chain_settings.SERVER_WALLET_PRIVATE_KEY = None
    with pytest.raises(ChainConfigurationError, match="SERVER_WALLET_PRIVATE_KEY"):
        deploy()


def test_a_refused_transaction_is_a_clear_error(chain_settings, chain):
    # A base fee above the presigned 100 gwei makes the node refuse it.
    chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(200 * 10**9))
    chain.rpc("anvil_setBalance", multicall.DEPLOYER, hex(10**17))
    with pytest.raises(PermanentJobError, match="the node refused the transaction"):
        deploy()


def test_the_wallet_key_appears_in_no_result_or_log(chain_settings, caplog):
    bad = "0x1234"
    chain_settings.SERVER_WALLET_PRIVATE_KEY = bad
    with caplog.at_level(logging.DEBUG):
        outcome = execution.run(
            WorkerJob.objects.submit("deployMulticall3"), "test-worker"
        )
    assert "not a valid private key" in outcome.error
    assert bad not in json.dumps(outcome.result) and bad not in caplog.text

    chain_settings.SERVER_WALLET_PRIVATE_KEY = SERVER_WALLET_KEY
    with caplog.at_level(logging.DEBUG):
        result = deploy()
    assert SERVER_WALLET_KEY[2:] not in json.dumps(result) + caplog.text


@pytest.mark.parametrize("data", [[1], {"forceRedeploy": "yes"}])
def test_bad_data_is_rejected_naming_the_value(data):
    with pytest.raises(InvalidJobDataError, match=r"'yes'|\[1\]"):
        deploy(data)
