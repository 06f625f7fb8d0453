"""Every model is in the admin, read-only where a write would bypass a service."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db

OURS = ("accounts", "catalog", "questions", "studies", "voting", "analysis")


def test_every_model_of_ours_is_registered():
    missing = [
        m._meta.label
        for m in apps.get_models()
        if m._meta.app_label in OURS and m not in admin.site._registry
    ]
    assert missing == []


def test_every_changelist_renders_and_offers_no_edit(client):
    user = get_user_model().objects.create_superuser("root", password="pw-root-12345")
    client.force_login(user)
    for model in list(admin.site._registry):
        if model._meta.app_label not in OURS:
            continue
        opts = model._meta
        page = client.get(f"/admin/{opts.app_label}/{opts.model_name}/")
        assert page.status_code == 200, opts.label
        assert client.get(f"/admin/{opts.app_label}/{opts.model_name}/add/").status_code == 403
