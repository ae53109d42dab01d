"""What watchChain remembers per chain: where it is, and which logs it handled."""

from __future__ import annotations

from django.db import models


class ChainCheckpoint(models.Model):
    """The last block watchChain processed on a chain, and that block's hash."""

    chain_id = models.PositiveBigIntegerField(unique=True)
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "chain checkpoint"

    def __str__(self) -> str:
        return f"chain {self.chain_id} at block {self.block_number}"


class ChainBlock(models.Model):
    """A block a run of watchChain ended at, kept to find where a reorg forked."""

    chain_id = models.PositiveBigIntegerField()
    number = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=66)

    class Meta:
        verbose_name = "processed chain block"
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "number"], name="workers_chainblock_unique"
            )
        ]

    def __str__(self) -> str:
        return f"chain {self.chain_id} block {self.number}"


class ProcessedLog(models.Model):
    """A log a chain filter has handled.

    A log is identified by its transaction and its rank among that filter's
    logs in the transaction, not by its block: a transaction that a reorg
    moves to another block is then not handled twice.
    """

    chain_id = models.PositiveBigIntegerField()
    filter = models.CharField(max_length=200)
    transaction_hash = models.CharField(max_length=66)
    rank = models.PositiveIntegerField(help_text="Among the filter's logs in the tx.")
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    log_index = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "processed chain log"
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "filter", "transaction_hash", "rank"],
                name="workers_processedlog_unique",
            )
        ]
        indexes = [
            models.Index(
                fields=["chain_id", "block_number"], name="workers_processedlog_block"
            )
        ]

    def __str__(self) -> str:
        return f"{self.filter} {self.transaction_hash}#{self.rank}"
