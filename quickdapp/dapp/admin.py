"""Admin pages of the example dapp."""

from __future__ import annotations

from django.contrib import admin

from .models import Notification, Token, Wallet


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ["address", "user", "created"]
    search_fields = ["address", "user__username"]
    raw_id_fields = ["user"]


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ["address", "symbol", "name", "creator", "created"]
    search_fields = ["address", "symbol", "name", "creator"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created", "user", "kind", "message", "read"]
    list_filter = ["kind", "read"]
    search_fields = ["message", "transaction_hash", "user__username"]
    # Written by watchChain from the chain's history: shown, not edited.
    readonly_fields = [
        "user",
        "kind",
        "message",
        "data",
        "chain_id",
        "transaction_hash",
        "created",
    ]
