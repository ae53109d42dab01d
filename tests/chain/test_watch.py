"""watchChain against a real anvil: every log handled once, whatever happens."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from quickdapp.dapp.models import Notification, Wallet
from workers import execution
from workers.chain import watch
from workers.chain.filters import registry
from workers.chain.models import ChainCheckpoint, ProcessedLog
from workers.exceptions import PermanentJobError
from workers.models import WorkerJob

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

LOG = logging.LoggerAdapter(logging.getLogger("tests.chain"), {})
TRANSFER = "dapp.tokenTransferred"


def watch_once() -> dict[str, Any]:
    return watch.run(WorkerJob(type="watchChain"), LOG)


@pytest.fixture
def users(chain: Any) -> dict[str, Any]:
    """alice owns the wallet of account 1, bob that of account 2."""
    found = {}
    for name, account in (("alice", 1), ("bob", 2)):
        user = get_user_model().objects.create_user(name)
        Wallet.objects.create(user=user, address=chain.accounts[account])
        found[name] = user
    return found


def notifications(user: Any) -> list[tuple[str, str]]:
    rows = Notification.objects.filter(user=user).order_by("id")
    return [(n.kind, n.data.get("value") or n.data["initialSupply"]) for n in rows]


def test_transfers_and_new_tokens_notify_once_across_runs(chain_settings, chain, users):
    token = chain.token(holder=1)
    factory = chain.deploy("DemoTokenFactory")
    chain_settings.DAPP_TOKEN_FACTORY_ADDRESS = factory.address
    first = watch_once()
    assert first["fromBlock"] == first["toBlock"] == chain.head

    huge = 10**24 + 1  # more digits than a float keeps
    chain.transfer(token, sender=1, to=3, value=huge)
    chain.transfer(token, sender=3, to=1, value=5)  # from no user's wallet
    chain.create_token(factory, creator=2, name="Bobcoin", supply=42 * 10**18)
    assert watch_once()["handled"] == 3  # each log, whether it notifies or not
    chain.transfer(token, sender=1, to=2, value=1500 * 10**15)
    assert watch_once()["handled"] == 1
    assert watch_once()["handled"] == 0

    assert notifications(users["alice"]) == [
        ("token_transfer", str(huge)),
        ("token_transfer", "1500000000000000000"),
    ]
    assert notifications(users["bob"]) == [("token_created", str(42 * 10**18))]
    sent = Notification.objects.filter(user=users["alice"]).order_by("id")
    assert (
        sent[0].message
        == f"You sent 1000000.000000000000000001 DEMO to {chain.accounts[3]}"
    )
    assert sent[1].message.startswith("You sent 1.5 DEMO to ")
    assert "Bobcoin" in Notification.objects.get(user=users["bob"]).message


def test_factory_filter_ignores_other_contracts(chain_settings, chain, users):
    factory = chain.deploy("DemoTokenFactory")
    other = chain.deploy("DemoTokenFactory")
    chain_settings.DAPP_TOKEN_FACTORY_ADDRESS = factory.address
    watch_once()
    chain.create_token(other, creator=2, name="Elsewhere", supply=1)
    chain.create_token(factory, creator=2, name="Here", supply=2)
    watch_once()
    assert notifications(users["bob"]) == [("token_created", "2")]


def test_a_run_covers_exactly_blocks_per_run(chain_settings, chain):
    chain_settings.CHAIN_BLOCKS_PER_RUN = 5
    start = watch_once()["toBlock"]
    chain.mine(12)
    ranges = [(r["fromBlock"], r["toBlock"]) for r in (watch_once() for _ in range(4))]
    assert ranges == [
        (start + 1, start + 5),
        (start + 6, start + 10),
        (start + 11, start + 12),
        (start + 13, None),
    ]


def test_confirmations_hold_back_recent_blocks(chain_settings, chain, users):
    chain_settings.CHAIN_CONFIRMATIONS = 3
    token = chain.token(holder=1)
    chain.mine(3)
    watch_once()
    chain.transfer(token, sender=1, to=2, value=7)
    assert watch_once()["toBlock"] == chain.head - 3
    assert not Notification.objects.exists()
    chain.mine(3)
    assert watch_once()["toBlock"] == chain.head - 3
    assert notifications(users["alice"]) == [("token_transfer", "7")]


def test_without_checkpoint_starts_at_head_or_start_block(chain_settings, chain, users):
    token = chain.token(holder=1)
    chain.transfer(token, sender=1, to=2, value=1)
    chain.mine(2)
    assert watch_once()["fromBlock"] == chain.head
    assert not Notification.objects.exists()

    ChainCheckpoint.objects.all().delete()
    chain_settings.CHAIN_START_BLOCK = 0
    assert watch_once()["fromBlock"] == 0
    assert notifications(users["alice"]) == [("token_transfer", "1")]


def test_a_run_failing_halfway_leaves_nothing_and_is_redone(
    chain_settings, chain, users
):
    token = chain.token(holder=1)
    watch_once()
    checkpoint = ChainCheckpoint.objects.get()
    for value in (1, 2, 3):
        chain.transfer(token, sender=1, to=2, value=value)
    handled = []

    def crash_on_third(event: Any, log: Any) -> None:
        handled.append(event.args["value"])
        if len(handled) == 3:
            raise RuntimeError("worker died")

    registry.register(
        "TokenTransferred(address indexed from, address indexed to, uint256 value, "
        "string name, string symbol, uint8 decimals)",
        crash_on_third,
        name="z.crash",
    )
    try:
        with pytest.raises(RuntimeError, match="worker died"):
            watch_once()
    finally:
        registry.unregister("z.crash")

    assert handled == [1, 2, 3]  # the dapp's filter had run for two of them
    assert not Notification.objects.exists()
    assert not ProcessedLog.objects.exists()
    assert ChainCheckpoint.objects.get().block_number == checkpoint.block_number
    assert watch_once()["handled"] == 3
    assert watch_once()["handled"] == 0
    assert notifications(users["alice"]) == [("token_transfer", v) for v in "123"]


def test_rpc_outage_fails_fast_and_the_next_run_catches_up(
    chain_settings, chain, anvil, users
):
    token = chain.token(holder=1)
    watch_once()
    chain.transfer(token, sender=1, to=2, value=10)
    anvil.stop()

    job = WorkerJob.objects.submit("watchChain")
    began = time.monotonic()
    outcome = execution.run(job, "test-worker")
    assert time.monotonic() - began < chain_settings.CHAIN_RPC_TIMEOUT + 1
    assert not outcome.success and not outcome.permanent
    assert f"the node at {anvil.url} could not be reached" in outcome.error

    anvil.start()  # same port, same state
    chain.transfer(token, sender=1, to=2, value=20)
    caught_up = watch_once()
    assert caught_up["handled"] == 2 and "reorg" not in caught_up
    assert watch_once()["handled"] == 0
    assert notifications(users["alice"]) == [
        ("token_transfer", "10"),
        ("token_transfer", "20"),
    ]


def test_a_hung_node_fails_within_the_timeout(chain_settings):
    with socket.socket() as hung:  # accepts connections, never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        chain_settings.CHAIN_RPC_URL = f"http://127.0.0.1:{hung.getsockname()[1]}"
        chain_settings.CHAIN_RPC_TIMEOUT = 0.5
        began = time.monotonic()
        outcome = execution.run(WorkerJob.objects.submit("watchChain"), "test-worker")
    assert time.monotonic() - began < 2
    assert "did not answer within 0.5 s (ReadTimeout)" in outcome.error


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (502, b"Bad Gateway", "answered HTTP 502 (HTTPError)"),
        (200, b"<html>login</html>", "answered something that is not JSON-RPC"),
    ],
)
def test_a_garbled_answer_is_named(chain_settings, status, body, message):
    class Garbled(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbled)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        chain_settings.CHAIN_RPC_URL = f"http://127.0.0.1:{server.server_address[1]}"
        outcome = execution.run(WorkerJob.objects.submit("watchChain"), "test-worker")
    finally:
        server.shutdown()
        server.server_close()
    assert not outcome.success and not outcome.permanent
    assert message in outcome.error


def test_a_bad_factory_address_fails_the_run_at_once(chain_settings):
    chain_settings.DAPP_TOKEN_FACTORY_ADDRESS = "0x1234"
    outcome = execution.run(WorkerJob.objects.submit("watchChain"), "test-worker")
    assert outcome.permanent
    assert "DAPP_TOKEN_FACTORY_ADDRESS is '0x1234'" in outcome.error


def test_a_reorg_is_followed_without_duplicates(chain_settings, chain, users, caplog):
    token = chain.token(holder=1)
    watch_once()
    snapshot = chain.rpc("evm_snapshot")
    chain.transfer(token, sender=1, to=2, value=111)
    chain.mine(2)
    watch_once()
    assert notifications(users["alice"]) == [("token_transfer", "111")]

    chain.rpc("evm_revert", snapshot)
    chain.transfer(token, sender=1, to=3, value=222)
    chain.transfer(token, sender=1, to=3, value=333)
    chain.mine(3)
    with caplog.at_level(logging.WARNING, logger="tests.chain"):
        result = watch_once()
    assert result["reorg"]["backTo"] < result["reorg"]["lostBlock"]
    assert "Chain reorganised" in caplog.text
    assert result["handled"] == 2
    assert watch_once()["handled"] == 0
    # The lost transfer was notified when it happened; the new ones once each.
    assert notifications(users["alice"]) == [
        ("token_transfer", "111"),
        ("token_transfer", "222"),
        ("token_transfer", "333"),
    ]
    checkpoint = ChainCheckpoint.objects.get()
    block = chain.w3.eth.get_block(checkpoint.block_number)
    assert checkpoint.block_hash == "0x" + bytes(block["hash"]).hex()


def test_a_reorg_while_a_run_reads_the_chain_loses_no_log(
    chain_settings, chain, users, monkeypatch
):
    token = chain.token(holder=1)
    watch_once()
    snapshot = chain.rpc("evm_snapshot")
    chain.mine(1)
    watch_once()  # the checkpoint is now the block the reorg replaces
    chain.mine(2)

    real_fetch_filter = watch.fetch_filter
    reorged = []

    def reorg_then_fetch(*args):
        # The reorg lands after the run checked its checkpoint, before it
        # reads the logs: the checkpoint's block now holds a transfer.
        if not reorged:
            reorged.append(True)
            chain.rpc("evm_revert", snapshot)
            chain.transfer(token, sender=1, to=2, value=444)
            chain.mine(3)
        return real_fetch_filter(*args)

    monkeypatch.setattr(watch, "fetch_filter", reorg_then_fetch)
    with pytest.raises(watch.ChainChangedError, match="was replaced"):
        watch_once()
    monkeypatch.undo()

    result = watch_once()
    assert "reorg" in result and result["handled"] == 1
    assert notifications(users["alice"]) == [("token_transfer", "444")]


def test_node_on_another_chain_is_a_clear_error(chain_settings):
    chain_settings.CHAIN_ID = 1
    with pytest.raises(PermanentJobError, match="is on chain 31337, but CHAIN_ID is 1"):
        watch_once()


def test_runworkers_once_runs_watch_chain(anvil, chain, users, run_manage):
    token = chain.token(holder=1)
    chain.transfer(token, sender=1, to=2, value=99)
    job = WorkerJob.objects.submit("watchChain")
    done = run_manage(
        "runworkers",
        "--once",
        "--no-maintenance",
        CHAIN_RPC_URL=anvil.url,
        CHAIN_START_BLOCK="0",
    )
    assert done.returncode == 0, done.stderr
    job.refresh_from_db()
    assert job.success, job.result
    assert job.result["handled"] == 1
    assert notifications(users["alice"]) == [("token_transfer", "99")]


KILLED_RUN = """
import logging, os, signal, django
django.setup()
from workers.chain import watch
from workers.chain.filters import registry
from workers.models import WorkerJob
from quickdapp.dapp.chain_filters import TOKEN_TRANSFERRED
seen = []
def die_on_second_log(event, log):
    seen.append(event)
    if len(seen) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
registry.register(TOKEN_TRANSFERRED, die_on_second_log, name="z.kill")
watch.run(WorkerJob(type="watchChain"), logging.LoggerAdapter(logging.getLogger(), {}))
"""


def test_a_run_killed_halfway_is_redone_without_duplicates(
    anvil, chain, chain_settings, users, workers_env
):
    token = chain.token(holder=1)
    watch_once()
    checkpoint = ChainCheckpoint.objects.get()
    for value in (1, 2, 3):
        chain.transfer(token, sender=1, to=2, value=value)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN],
        env={**workers_env, "CHAIN_RPC_URL": anvil.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not Notification.objects.exists()
    assert ChainCheckpoint.objects.get().block_number == checkpoint.block_number
    assert watch_once()["handled"] == 3
    assert notifications(users["alice"]) == [("token_transfer", v) for v in "123"]
