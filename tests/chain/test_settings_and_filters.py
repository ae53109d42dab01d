"""The chain settings, their checks, the filter registry and exact amounts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from quickdapp.dapp.units import format_units
from workers.chain import conf as chain_conf
from workers.chain.checks import check_chain_configured, check_chain_settings
from workers.chain.conf import ChainConfigurationError, public_url
from workers.chain.filters import ChainFilterRegistry, event_abi

from .conftest import ROOT


def chain_messages() -> list[str]:
    return [m.id for m in [*check_chain_configured(), *check_chain_settings()]]


def test_unset_rpc_url_is_reported_by_check(settings):
    settings.CHAIN_RPC_URL = None
    settings.SERVER_WALLET_PRIVATE_KEY = None
    assert chain_messages() == ["workers.I101"]
    settings.SERVER_WALLET_PRIVATE_KEY = "0x" + "11" * 32
    assert chain_messages() == ["workers.I101", "workers.W101"]


def test_unset_rpc_url_is_said_by_check_deploy_not_before_every_command(
    run_manage,
):
    checked = run_manage("check", "--deploy", CHAIN_RPC_URL="")
    migrated = run_manage("migrate", "--check", CHAIN_RPC_URL="")

    assert "workers.I101" in checked.stdout + checked.stderr
    assert "I101" not in migrated.stdout + migrated.stderr


def test_bad_chain_settings_are_check_errors(settings):
    settings.CHAIN_RPC_URL = "http://127.0.0.1:8545"
    settings.CHAIN_BLOCKS_PER_RUN = 0
    assert [(e.id, e.msg) for e in check_chain_settings()] == [
        ("workers.E101", "CHAIN_BLOCKS_PER_RUN is 0: give a whole number, 1 or more")
    ]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CHAIN_CONFIRMATIONS", -1, "CHAIN_CONFIRMATIONS is -1"),
        ("CHAIN_ID", "mainnet", "CHAIN_ID is 'mainnet'"),
        ("CHAIN_RPC_TIMEOUT", 0, "CHAIN_RPC_TIMEOUT is 0"),
        ("CHAIN_START_BLOCK", 1.5, "CHAIN_START_BLOCK is 1.5"),
        ("CHAIN_RPC_TIMEOUT", float("inf"), "CHAIN_RPC_TIMEOUT is inf"),
        ("CHAIN_RPC_URL", "", "CHAIN_RPC_URL is not set"),
        ("CHAIN_RPC_URL", "127.0.0.1:8545", "CHAIN_RPC_URL has no scheme"),
        ("CHAIN_RPC_URL", "ws://127.0.0.1:8545", "CHAIN_RPC_URL has the scheme 'ws'"),
        ("CHAIN_RPC_URL", "http//node/KEY", "CHAIN_RPC_URL has no scheme"),
        ("CHAIN_RPC_URL", "https:///v3/KEY", "CHAIN_RPC_URL has the scheme 'https'"),
        ("CHAIN_RPC_URL", "http://[::1", "CHAIN_RPC_URL cannot be read"),
        ("CHAIN_RPC_URL", "http://127.0.0.1:99999", "CHAIN_RPC_URL cannot be read"),
        ("CHAIN_RPC_URL", "http://127.0.0.1:abc/", "CHAIN_RPC_URL cannot be read"),
    ],
)
def test_load_names_the_bad_setting(settings, name, value, message):
    settings.CHAIN_RPC_URL = "http://127.0.0.1:8545"
    setattr(settings, name, value)
    with pytest.raises(ChainConfigurationError, match=message):
        chain_conf.load()


@pytest.mark.parametrize(
    "url",
    [
        "wss://mainnet.example/v3/SECRET",
        "https://user:SECRET/x@host/v3/KEY",
        "https://host:SECRET/v3",
        "https://user:p\uff03SECRET@host/",
    ],
)
def test_a_bad_url_is_a_check_error_that_does_not_repeat_it(settings, url):
    settings.CHAIN_RPC_URL = url
    [error] = check_chain_settings()
    assert error.id == "workers.E101" and "CHAIN_RPC_URL" in error.msg
    assert "SECRET" not in error.msg


@pytest.mark.parametrize(
    "key", ["a" * 63, "a" * 65, "0xg", "0" * 64, "0x" + "f" * 64], ids=str
)
def test_a_wallet_key_that_is_no_key_is_a_check_error(settings, key):
    settings.CHAIN_RPC_URL = "http://127.0.0.1:8545"
    settings.SERVER_WALLET_PRIVATE_KEY = key
    [error] = check_chain_settings()
    assert "SERVER_WALLET_PRIVATE_KEY is not a valid private key" in error.msg
    assert "aaaa" not in error.msg


def test_the_wallet_key_is_not_in_the_settings_repr(settings):
    settings.CHAIN_RPC_URL = "http://127.0.0.1:8545"
    settings.SERVER_WALLET_PRIVATE_KEY = "0x" + "ab" * 32
    assert "abab" not in repr(chain_conf.load())


def test_public_url_drops_credentials_and_path():
    assert public_url("https://user:pw@rpc.example:8443/v3/KEY") == (
        "https://rpc.example:8443"
    )


def test_event_abi_reads_a_solidity_signature():
    abi = event_abi("Moved(address indexed from, uint256[] values, bytes32 tag)")
    assert abi["name"] == "Moved"
    assert abi["inputs"] == [
        {"name": "from", "type": "address", "indexed": True},
        {"name": "values", "type": "uint256[]", "indexed": False},
        {"name": "tag", "type": "bytes32", "indexed": False},
    ]


@pytest.mark.parametrize("signature", ["Moved", "Moved(address)", "(uint x)"])
def test_event_abi_rejects_what_it_cannot_read(signature):
    with pytest.raises(ValueError, match=r"Moved|uint x"):
        event_abi(signature)


def test_a_filter_name_is_registered_once():
    registry = ChainFilterRegistry()
    registry.register("Ping(uint256 n)", lambda event, log: None, name="ping")
    with pytest.raises(ValueError, match="'ping' is already registered"):
        registry.register("Ping(uint256 n)", lambda event, log: None, name="ping")
    assert [f.name for f in registry.all()] == ["ping"]


@pytest.mark.parametrize(
    ("amount", "decimals", "text"),
    [
        (0, 18, "0"),
        (1500, 3, "1.5"),
        (1, 18, "0.000000000000000001"),
        (
            2**256 - 1,
            18,
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935",
        ),
        (7, 0, "7"),
    ],
)
def test_format_units_is_exact(amount, decimals, text):
    assert format_units(amount, decimals) == text


def test_the_app_loads_without_web3():
    code = (
        "import django, sys; django.setup(); "
        "import workers.jobs, quickdapp.dapp.chain_filters; "
        "print('web3' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "quickdapp.settings", "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"


def test_the_chain_jobs_have_a_timeout_the_pool_enforces(settings):
    """CHAIN_RPC_TIMEOUT bounds a socket read; a slow-dripping node needs this."""
    from workers.supervision import job_timeout

    settings.WORKER_JOB_TIMEOUT = None
    assert job_timeout("watchChain") == 300
    assert job_timeout("deployMulticall3") == 600


def test_a_bad_factory_address_is_a_check_error(settings):
    settings.CHAIN_RPC_URL = "http://127.0.0.1:8545"
    settings.DAPP_TOKEN_FACTORY_ADDRESS = "0x1234"
    [error] = check_chain_settings()
    assert error.id == "workers.E102"
    assert "DAPP_TOKEN_FACTORY_ADDRESS is '0x1234'" in error.msg


def test_a_filter_address_that_is_not_one_names_the_filter():
    registry = ChainFilterRegistry()
    registry.register("Ping(uint256 n)", lambda e, log: None, name="p", address="0x1")
    [chain_filter] = registry.all()
    with pytest.raises(ChainConfigurationError, match="chain filter 'p' is '0x1'"):
        chain_filter.contract_address()
