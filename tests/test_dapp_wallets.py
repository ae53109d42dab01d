"""Wallet addresses added in the admin: checked, and stored in lower case."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from quickdapp.dapp.models import Wallet

ADD = reverse("admin:dapp_wallet_add")
# Account 1 of anvil's dev mnemonic, as EIP-55 spells it.
CHECKSUMMED = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture
def admin(client, db):
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    client.force_login(user)
    return user


def add(client, user, address):
    return client.post(ADD, {"user": user.pk, "address": address})


def test_an_address_is_stored_in_lower_case(client, admin):
    response = add(client, admin, CHECKSUMMED)
    assert response.status_code == 302
    assert Wallet.objects.get().address == CHECKSUMMED.lower()


@pytest.mark.parametrize(
    "address",
    [
        "not an address",
        "70997970C51812dc3A010C7d01b50e0d17dc79C8",  # no 0x
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C",  # 39 digits
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8aa",  # 42 digits
        "0x70997970G51812dc3A010C7d01b50e0d17dc79C8",  # not hex
    ],
)
def test_a_bad_address_is_refused_with_a_message(client, admin, address):
    response = add(client, admin, address)
    assert response.status_code == 200
    assert "0x followed by 40 hex digits" in response.content.decode()
    assert not Wallet.objects.exists()


def test_a_linked_address_in_another_case_is_a_duplicate_not_an_error(client, admin):
    assert add(client, admin, CHECKSUMMED.lower()).status_code == 302
    response = add(client, admin, CHECKSUMMED)
    assert response.status_code == 200
    assert "Wallet with this Address already exists." in response.content.decode()
    assert Wallet.objects.count() == 1
