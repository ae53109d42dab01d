"""watchChain: hand each new log of the registered chain filters to its handler.

A run reads the blocks after the chain's checkpoint, up to the head less
CHAIN_CONFIRMATIONS and at most CHAIN_BLOCKS_PER_RUN of them. All node
requests happen first; then one transaction runs the handlers, records the
logs as processed and moves the checkpoint. A run that fails anywhere leaves
no trace, and the next one redoes the same range; a log already recorded is
never handed over again.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from ..models import WorkerJob
from . import client, filters
from . import conf as chain_conf
from .filters import ChainEvent, ChainFilter
from .models import ChainBlock, ChainCheckpoint, ProcessedLog

if TYPE_CHECKING:
    from web3 import Web3

# Range ends remembered per chain: how far back a reorg can be followed.
HISTORY_LENGTH = 128


class CheckpointMovedError(RuntimeError):
    """Another run of watchChain moved the checkpoint while this one worked."""


class ChainChangedError(RuntimeError):
    """The chain reorganised while this run read it."""


@dataclass
class Run:
    """One run's view of the node: what it talks to, and where the chain is."""

    settings: chain_conf.ChainSettings
    w3: Web3
    chain_id: int
    log: logging.LoggerAdapter

    def ask(self, request: Any) -> Any:
        return client.call(self.settings, request)

    def block_hash(self, number: int) -> str | None:
        """The hash of block `number` on the node's chain; None if it has none."""
        return self._block_field(number, "hash")

    def parent_hash(self, number: int) -> str | None:
        """The hash of the parent of block `number`; None if there is no block."""
        return self._block_field(number, "parentHash")

    def _block_field(self, number: int, name: str) -> str | None:
        from web3.exceptions import BlockNotFound

        try:
            block = self.ask(lambda: self.w3.eth.get_block(number))
        except BlockNotFound:
            return None
        return "0x" + bytes(block[name]).hex()


def run(job: WorkerJob, log: logging.LoggerAdapter) -> dict[str, Any]:
    """Process the next range of blocks; return what was done."""
    settings = chain_conf.load()
    w3 = client.connect(settings)
    chain = Run(settings, w3, client.call(settings, lambda: w3.eth.chain_id), log)
    filters.discover()
    head = chain.ask(lambda: w3.eth.block_number)
    safe_head = head - settings.confirmations
    checkpoint = ChainCheckpoint.objects.filter(chain_id=chain.chain_id).first()
    result: dict[str, Any] = {"chain": chain.chain_id, "head": head}
    if checkpoint is not None and chain.block_hash(checkpoint.block_number) != (
        checkpoint.block_hash
    ):
        result["reorg"] = step_back(chain, checkpoint)
        checkpoint = ChainCheckpoint.objects.filter(chain_id=chain.chain_id).first()
    if checkpoint is not None:
        first = checkpoint.block_number + 1
    elif settings.start_block is not None:
        first = settings.start_block
    else:
        first = max(safe_head, 0)
    last = min(safe_head, first + settings.blocks_per_run - 1)
    if last < first:
        log.debug("No new blocks to process", extra={"chain": chain.chain_id})
        return {**result, "fromBlock": first, "toBlock": None, "handled": 0}
    parent = None if checkpoint is None else checkpoint.block_hash
    events, end_hash = fetch(chain, filters.registry.all(), first, last, parent)
    handled = commit(chain, checkpoint, events, last, end_hash)
    log.info(
        "Processed blocks",
        extra={
            "chain": chain.chain_id,
            "from_block": first,
            "to_block": last,
            "logs": len(events),
            "handled": handled,
        },
    )
    return {**result, "fromBlock": first, "toBlock": last, "handled": handled}


def fetch(
    chain: Run,
    watched: list[ChainFilter],
    first: int,
    last: int,
    parent_hash: str | None = None,
) -> tuple[list[tuple[ChainFilter, ChainEvent, int]], str]:
    """The filters' logs in blocks first..last, in chain order, and last's hash.

    Each log comes with its rank among its filter's logs in its transaction.
    The hash of the last block is read before and after the logs: if it
    changed, the logs may come from two versions of the chain. In between,
    block `first` must still follow `parent_hash` (the checkpoint's block):
    a reorg since the run checked the checkpoint would otherwise slip by,
    and the replaced blocks' logs would never be read.
    """
    end_hash = chain.block_hash(last)
    found = []
    for chain_filter in watched:
        ranks: Counter[str] = Counter()
        for event in fetch_filter(chain, chain_filter, first, last):
            found.append((chain_filter, event, ranks[event.transaction_hash]))
            ranks[event.transaction_hash] += 1
    if parent_hash is not None and chain.parent_hash(first) != parent_hash:
        raise ChainChangedError(
            f"block {first - 1} of chain {chain.chain_id} was replaced while "
            "this run read the chain; the next run steps back"
        )
    if end_hash is None or chain.block_hash(last) != end_hash:
        raise ChainChangedError(
            f"block {last} of chain {chain.chain_id} changed while it was read; "
            "the next run reads it again"
        )
    found.sort(key=lambda item: (item[1].block_number, item[1].log_index))
    return found, end_hash


def fetch_filter(
    chain: Run, chain_filter: ChainFilter, first: int, last: int
) -> list[ChainEvent]:
    """The logs of one filter in first..last, decoded."""
    from eth_utils import event_abi_to_log_topic
    from web3.exceptions import LogTopicError, MismatchedABI

    query: dict[str, Any] = {
        "fromBlock": first,
        "toBlock": last,
        "topics": ["0x" + event_abi_to_log_topic(chain_filter.abi).hex()],
    }
    address = chain_filter.contract_address()
    if address:
        query["address"] = chain.w3.to_checksum_address(address)
    raw_logs = chain.ask(lambda: chain.w3.eth.get_logs(query))
    contract = chain.w3.eth.contract(abi=[chain_filter.abi])
    decoder = contract.events[chain_filter.abi["name"]]()
    events = []
    for raw in raw_logs:
        try:
            decoded = decoder.process_log(raw)
        except (LogTopicError, MismatchedABI):
            # Same topic, other layout (say ERC-721's Transfer): not this event.
            continue
        except Exception as error:  # any contract can emit any bytes
            # The right topic but data that does not decode (a bad string,
            # data too short...): decoding it again will never succeed, so
            # failing the run would stop the checkpoint for good. Skip it.
            chain.log.warning(
                "Skipped a log that cannot be decoded: chain %s, block %s, "
                "transaction %s, log index %s: %s",
                chain.chain_id,
                raw.get("blockNumber"),
                _hex(raw.get("transactionHash", b"")),
                raw.get("logIndex"),
                f"{type(error).__name__}: {error}",
                extra={"chain": chain.chain_id, "filter": chain_filter.name},
            )
            continue
        events.append(
            ChainEvent(
                chain_id=chain.chain_id,
                filter=chain_filter.name,
                event=decoded["event"],
                args={key: _plain(value) for key, value in decoded["args"].items()},
                address=decoded["address"],
                block_number=decoded["blockNumber"],
                block_hash=_hex(decoded["blockHash"]),
                transaction_hash=_hex(decoded["transactionHash"]),
                log_index=decoded["logIndex"],
            )
        )
    return events


def commit(
    chain: Run,
    checkpoint: ChainCheckpoint | None,
    events: list[tuple[ChainFilter, ChainEvent, int]],
    last: int,
    end_hash: str,
) -> int:
    """Handle the new logs and move the checkpoint, in one transaction."""
    handled = 0
    with transaction.atomic():
        # Moved first: a concurrent run blocks here, then finds it moved.
        move_checkpoint(chain.chain_id, checkpoint, last, end_hash)
        for chain_filter, event, rank in events:
            key = {
                "chain_id": chain.chain_id,
                "filter": chain_filter.name,
                "transaction_hash": event.transaction_hash,
                "rank": rank,
            }
            if ProcessedLog.objects.filter(**key).exists():
                continue
            chain_filter.handler(event, chain.log)
            ProcessedLog.objects.create(
                **key,
                block_number=event.block_number,
                block_hash=event.block_hash,
                log_index=event.log_index,
            )
            handled += 1
    return handled


def move_checkpoint(
    chain_id: int, checkpoint: ChainCheckpoint | None, number: int, block_hash: str
) -> None:
    """Set the checkpoint to block `number`, if no other run moved it since."""
    if checkpoint is None:
        try:
            with transaction.atomic():
                ChainCheckpoint.objects.create(
                    chain_id=chain_id, block_number=number, block_hash=block_hash
                )
        except IntegrityError:
            raise CheckpointMovedError(
                f"another run of watchChain started chain {chain_id} meanwhile"
            ) from None
    else:
        moved = ChainCheckpoint.objects.filter(
            pk=checkpoint.pk,
            block_number=checkpoint.block_number,
            block_hash=checkpoint.block_hash,
        ).update(block_number=number, block_hash=block_hash)
        if not moved:
            raise CheckpointMovedError(
                f"another run of watchChain moved the checkpoint of chain "
                f"{chain_id} from block {checkpoint.block_number} meanwhile"
            )
    ChainBlock.objects.update_or_create(
        chain_id=chain_id, number=number, defaults={"hash": block_hash}
    )
    kept = ChainBlock.objects.filter(chain_id=chain_id).order_by("-number")
    oldest_kept = kept.values_list("number", flat=True)[HISTORY_LENGTH - 1 :].first()
    if oldest_kept is not None:
        ChainBlock.objects.filter(chain_id=chain_id, number__lt=oldest_kept).delete()


def step_back(chain: Run, checkpoint: ChainCheckpoint) -> dict[str, Any]:
    """Move the checkpoint back to the newest remembered block still on the chain.

    With none left (a reorg deeper than the history, or a chain that was
    reset), the checkpoint is dropped and the chain is started afresh.
    """
    remembered = ChainBlock.objects.filter(
        chain_id=chain.chain_id, number__lt=checkpoint.block_number
    ).order_by("-number")
    fork = next(
        (block for block in remembered if chain.block_hash(block.number) == block.hash),
        None,
    )
    with transaction.atomic():
        moved = ChainCheckpoint.objects.filter(
            pk=checkpoint.pk, block_number=checkpoint.block_number
        )
        if fork is None:
            moved.delete()
            ChainBlock.objects.filter(chain_id=chain.chain_id).delete()
        else:
            moved.update(block_number=fork.number, block_hash=fork.hash)
            ChainBlock.objects.filter(
                chain_id=chain.chain_id, number__gt=fork.number
            ).delete()
    back_to = None if fork is None else fork.number
    level = logging.ERROR if fork is None else logging.WARNING
    chain.log.log(
        level,
        "Chain reorganised: block %s is no longer on it; %s",
        checkpoint.block_number,
        "no remembered block is, starting afresh"
        if fork is None
        else f"reprocessing from block {fork.number + 1}",
        extra={
            "chain": chain.chain_id,
            "lost_block": checkpoint.block_number,
            "lost_hash": checkpoint.block_hash,
            "back_to": back_to,
        },
    )
    return {"lostBlock": checkpoint.block_number, "backTo": back_to}


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _plain(value: Any) -> Any:
    """A decoded argument as plain Python: bytes as 0x-hex, ints kept exact."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
