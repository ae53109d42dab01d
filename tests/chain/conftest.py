"""A real anvil chain for the chain jobs' tests, and helpers to act on it.

Each test gets its own anvil on a free port. The binary is started directly
(not through the npm wrapper) so that stopping it by its pid stops the node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "contracts" / "build"
# The first of anvil's default accounts, funded with 10,000 ETH; its key is
# the published one of the mnemonic "test test ... junk".
SERVER_WALLET_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def anvil_binary() -> Path | None:
    found = sorted(ROOT.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    return found[0] if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Anvil:
    """One anvil process; stop() and start() again keep its port and state."""

    def __init__(self, binary: Path, state_dir: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.state = state_dir / "state.json"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [str(self.binary), "--port", str(self.port), "--silent"]
        args += ["--dump-state", str(self.state)]
        if self.state.exists():
            args += ["--load-state", str(self.state)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the node (SIGTERM: it dumps its state) and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[Anvil]:
    binary = anvil_binary()
    if binary is None:
        missing = "anvil is not installed: run `npm ci` at the repository root"
        if os.environ.get("WORKERS_REQUIRE_ANVIL"):
            pytest.fail(missing)  # CI: a missing chain must not pass as skipped
        pytest.skip(missing)
    node = Anvil(binary, tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def chain_settings(anvil: Anvil, settings: Any) -> Any:
    """Django settings pointing the chain jobs at the test's anvil."""
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_ID = None
    settings.SERVER_WALLET_PRIVATE_KEY = SERVER_WALLET_KEY
    settings.CHAIN_CONFIRMATIONS = 0
    settings.CHAIN_BLOCKS_PER_RUN = 500
    settings.CHAIN_RPC_TIMEOUT = 2.0
    settings.CHAIN_START_BLOCK = None
    settings.DAPP_TOKEN_FACTORY_ADDRESS = None
    return settings


class Chain:
    """Acts on the test chain as users would: deploy, transfer, create tokens."""

    def __init__(self, url: str) -> None:
        from web3 import HTTPProvider, Web3

        self.w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 10}))
        self.accounts = self.w3.eth.accounts

    def artifact(self, name: str) -> dict[str, Any]:
        return json.loads((ARTIFACTS / f"{name}.json").read_text())

    def deploy(self, name: str, *args: Any, sender: int = 0) -> Any:
        artifact = self.artifact(name)
        factory = self.w3.eth.contract(
            abi=artifact["abi"], bytecode=artifact["bytecode"]
        )
        tx = factory.constructor(*args).transact({"from": self.accounts[sender]})
        address = self.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
        return self.w3.eth.contract(address=address, abi=artifact["abi"])

    def token(
        self,
        supply: int = 10**30,
        holder: int = 0,
        name: str = "Demo",
        symbol: str = "DEMO",
    ) -> Any:
        """A DemoToken the dapp knows, as if the factory had created it."""
        from quickdapp.dapp.models import Token

        token = self.deploy("DemoToken", name, symbol, supply, self.accounts[holder])
        Token.objects.create(address=token.address, name=name, symbol=symbol)
        return token

    def transfer(self, token: Any, sender: int, to: int, value: int) -> str:
        tx = token.functions.transfer(self.accounts[to], value).transact(
            {"from": self.accounts[sender]}
        )
        self.w3.eth.wait_for_transaction_receipt(tx)
        return "0x" + bytes(tx).hex()

    def create_token(self, factory: Any, creator: int, name: str, supply: int) -> str:
        tx = factory.functions.erc20NewToken(name, name[:4].upper(), supply).transact(
            {"from": self.accounts[creator]}
        )
        self.w3.eth.wait_for_transaction_receipt(tx)
        return "0x" + bytes(tx).hex()

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])

    def rpc(self, method: str, *params: Any) -> Any:
        reply = self.w3.provider.make_request(method, list(params))
        assert "error" not in reply, reply
        return reply["result"]

    @property
    def head(self) -> int:
        return self.w3.eth.block_number


@pytest.fixture
def chain(anvil: Anvil) -> Chain:
    return Chain(anvil.url)
