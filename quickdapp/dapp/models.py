"""The example dapp's models: wallets linked to users, known tokens, notifications."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class Wallet(models.Model):
    """A wallet address that belongs to a user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallets"
    )
    # Lower case, so that lookups need not care how the address was written.
    address = models.CharField(max_length=42, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    def clean(self) -> None:
        """Refuse what is no address; store it in lower case.

        Done here, before the form checks uniqueness, so that the checksummed
        spelling of a linked address is refused as a duplicate, not saved.
        """
        super().clean()
        if not ADDRESS.fullmatch(self.address or ""):
            raise ValidationError(
                {"address": "Enter an address: 0x followed by 40 hex digits."}
            )
        self.address = self.address.lower()

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.address = self.address.lower()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.address

    @classmethod
    def owner_of(cls, address: str) -> Any:
        """The user `address` belongs to, or None."""
        wallet = cls.objects.select_related("user").filter(address=address.lower())
        found = wallet.first()
        return found.user if found else None


class Token(models.Model):
    """A token the dapp trusts: created by its factory, or added in the admin.

    Any contract can emit TokenTransferred with any sender; only the logs of
    these tokens become notifications.
    """

    # Lower case, like wallet addresses.
    address = models.CharField(max_length=42, unique=True)
    name = models.TextField(blank=True)
    symbol = models.TextField(blank=True)
    # Not in the factory's event; the transfer event carries its own.
    decimals = models.PositiveSmallIntegerField(null=True, blank=True)
    creator = models.CharField(max_length=42, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.address = self.address.lower()
        self.creator = self.creator.lower()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.symbol} ({self.address})" if self.symbol else self.address

    @classmethod
    def is_known(cls, address: str) -> bool:
        return cls.objects.filter(address=address.lower()).exists()


class Notification(models.Model):
    """Something that happened on the chain, for one user to read."""

    class Kind(models.TextChoices):
        TOKEN_TRANSFER = "token_transfer", "Token transfer"
        TOKEN_CREATED = "token_created", "Token created"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    message = models.TextField()
    # Event details; token amounts are decimal strings of base units, since a
    # uint256 fits neither a float nor SQLite's numbers.
    data = models.JSONField(default=dict, blank=True)
    chain_id = models.PositiveBigIntegerField()
    transaction_hash = models.CharField(max_length=66)
    read = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "-created"], name="dapp_notif_user")]

    def __str__(self) -> str:
        return self.message
