"""System checks of the chain settings."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register

from .. import conf
from . import conf as chain_conf


@register(Tags.compatibility, deploy=True)
def check_chain_configured(app_configs: Any = None, **kwargs: Any) -> list[Info]:
    """Say that the chain jobs are off; only under `check --deploy`.

    Django prints every message of the ordinary checks before each command,
    and an unset CHAIN_RPC_URL is a choice, not a fault to repeat on every
    migrate. runworkers logs it once when it starts.
    """
    if conf.get("CHAIN_RPC_URL"):
        return []
    return [
        Info(
            "CHAIN_RPC_URL is not set: watchChain and deployMulticall3 are "
            "not scheduled.",
            hint="Set CHAIN_RPC_URL to a node's JSON-RPC URL to run them.",
            id="workers.I101",
        )
    ]


@register(Tags.compatibility)
def check_chain_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not conf.get("CHAIN_RPC_URL"):
        if not conf.get("SERVER_WALLET_PRIVATE_KEY"):
            return []
        return [
            Warning(
                "SERVER_WALLET_PRIVATE_KEY is set but CHAIN_RPC_URL is not: "
                "the key is not used.",
                hint="Set CHAIN_RPC_URL, or remove the key from the environment.",
                id="workers.W101",
            )
        ]
    errors = [
        Error(
            problem, hint="See the chain settings in docs/chain.md.", id="workers.E101"
        )
        for problem in chain_conf.problems()
    ]
    return errors + _filter_address_errors()


def _filter_address_errors() -> list[CheckMessage]:
    """A chain filter whose contract address (often from a setting) is not one."""
    from .filters import discover, registry

    discover()
    errors: list[CheckMessage] = []
    for chain_filter in registry.all():
        try:
            chain_filter.contract_address()
        except chain_conf.ChainConfigurationError as error:
            errors.append(
                Error(
                    str(error),
                    hint="Fix the setting the address comes from.",
                    id="workers.E102",
                )
            )
    return errors
