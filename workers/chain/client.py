"""The web3 client the chain jobs talk to the node through."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..exceptions import PermanentJobError
from .conf import ChainSettings, public_url

if TYPE_CHECKING:
    from web3 import Web3

T = TypeVar("T")


class NodeUnavailableError(ConnectionError):
    """The node could not be reached, did not answer within CHAIN_RPC_TIMEOUT,
    or answered with an HTTP error or something that is not JSON-RPC.

    Not permanent: the job's next run tries again and catches up.
    """


class WrongChainError(PermanentJobError):
    """The node is on another chain than CHAIN_ID says."""


def connect(settings: ChainSettings) -> Web3:
    """A client for the node of CHAIN_RPC_URL, checked against CHAIN_ID.

    Each request gives up after CHAIN_RPC_TIMEOUT seconds and is not retried,
    so that a dead or hung node fails the run within that time instead of
    after the provider's retries.
    """
    from web3 import HTTPProvider, Web3

    provider = HTTPProvider(
        settings.rpc_url,
        request_kwargs={"timeout": settings.rpc_timeout},
        exception_retry_configuration=None,
    )
    w3 = Web3(provider)
    if settings.chain_id is not None:
        actual = call(settings, lambda: w3.eth.chain_id)
        if actual != settings.chain_id:
            raise WrongChainError(
                f"the node at {public_url(settings.rpc_url)} is on chain "
                f"{actual}, but CHAIN_ID is {settings.chain_id}: point "
                "CHAIN_RPC_URL at a node of that chain or change CHAIN_ID"
            )
    return w3


def call(settings: ChainSettings, request: Callable[[], T]) -> T:
    """Run `request`; a node that is down, slow or garbled becomes
    NodeUnavailableError, whose message says which.

    The requests library raises its own ConnectionError, Timeout and
    HTTPError (all OSError) for these, not a web3 exception.
    """
    import requests

    try:
        return request()
    except requests.Timeout as error:
        problem = f"did not answer within {settings.rpc_timeout:g} s"
        cause: BaseException = error
    except requests.HTTPError as error:
        status = getattr(error.response, "status_code", None)
        problem = f"answered HTTP {status}" if status else "answered an HTTP error"
        cause = error
    except json.JSONDecodeError as error:
        problem = "answered something that is not JSON-RPC"
        cause = error
    except OSError as error:
        problem = "could not be reached"
        cause = error
    raise NodeUnavailableError(
        f"the node at {public_url(settings.rpc_url)} {problem} "
        f"({type(cause).__name__}); the next run will try again"
    ) from None


def client_version(settings: ChainSettings, w3: Web3) -> str:
    """The node's web3_clientVersion, e.g. 'anvil/v1.7.1'."""
    return str(rpc(settings, w3, "web3_clientVersion"))


def rpc(settings: ChainSettings, w3: Web3, method: str, *params: Any) -> Any:
    """Call a raw JSON-RPC method; an error reply raises RuntimeError."""
    reply = call(settings, lambda: w3.provider.make_request(method, list(params)))
    if "error" in reply:
        raise RuntimeError(f"{method} failed: {reply['error']}")
    return reply.get("result")
