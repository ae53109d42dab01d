"""The README's demo: chaindemo's activity becomes notifications."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from quickdapp.dapp.models import Notification
from workers.chain import watch
from workers.models import WorkerJob

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def test_chaindemo_activity_becomes_two_notifications(chain_settings, capsys):
    user = get_user_model().objects.create_user("admin")
    log = logging.LoggerAdapter(logging.getLogger("tests.chain"), {})
    watch.run(WorkerJob(type="watchChain"), log)
    call_command("chaindemo", "admin")
    assert "sent 1.5 DEMO" in capsys.readouterr().out
    watch.run(WorkerJob(type="watchChain"), log)
    kinds = sorted(
        Notification.objects.filter(user=user).values_list("kind", flat=True)
    )
    assert kinds == ["token_created", "token_transfer"]
