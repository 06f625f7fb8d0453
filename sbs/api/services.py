"""Writes behind the HTTP API: personal tokens, and the steps the pages do inline that the
API does too (staging an uploaded model, building a study from the page's form, answering
an export).

Everything else the API does, it does through the apps' own services: the same checks,
the same refusals, the same rows as the pages.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q
from django.utils import timezone

from sbs.analysis import exports
from sbs.analysis import services as analysis_services
from sbs.analysis.models import ReportCache
from sbs.api.models import ApiToken
from sbs.catalog import services as catalog_services
from sbs.catalog.models import ModelEntry
from sbs.studies import services as study_services
from sbs.studies.models import Study

# "sbs_" marks the token as ours (secret scanners and people recognise it); the rest is
# secrets.token_urlsafe(32): 256 random bits.
TOKEN_PREFIX = "sbs_"
SHOWN_CHARS = len(TOKEN_PREFIX) + 8
MAX_TOKEN_CHARS = 200
# last_used_at is written at most this often per token: not one write per request.
LAST_USED_EVERY = timedelta(minutes=1)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the token, which is shown once and
    never stored (the row keeps its sha256 and its first characters)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        user=user,
        name=name.strip()[:100],
        prefix=token[:SHOWN_CHARS],
        token_sha256=token_digest(token),
    )
    return row, token


def token_revoke(*, user: User, token_id: int) -> bool:
    """Revoke one of ``user``'s own tokens; False when there was no such live token."""
    return bool(
        ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def token_user(*, token: str) -> User | None:
    """The active account a presented token opens, or None (unknown, revoked, or its
    account deactivated). The digests of the candidates sharing the token's prefix are
    compared in constant time; the token's last use is noted (at most once a minute)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
        return None
    digest = token_digest(token)
    candidates = ApiToken.objects.select_related("user").filter(
        prefix=token[:SHOWN_CHARS], revoked_at__isnull=True
    )
    for row in candidates:
        if not hmac.compare_digest(row.token_sha256, digest):
            continue
        if not row.user.is_active:
            return None
        now = timezone.now()
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY), pk=row.pk
        ).update(last_used_at=now)
        return row.user
    return None


# ------------------------------------------------------------- what the pages do inline


def model_register_upload(
    *, name: str, upload: UploadedFile[Any], user: User, parent: ModelEntry | None
) -> ModelEntry:
    """Register an uploaded archive or GGUF file as the models page does: the upload is
    staged under its own suffix in a temporary folder, then checked and copied by
    :func:`sbs.catalog.services.model_register`."""
    suffix = "".join(Path(upload.name or "").suffixes[-2:]) or ".bin"
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / f"upload{suffix}"
        with staged.open("wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        return catalog_services.model_register(name=name, source=staged, user=user, parent=parent)


def annotators_add(
    *, study: Study, existing: list[User], names: list[str], created_by: User
) -> tuple[int, list[tuple[Any, str]]]:
    """Add existing accounts and create accounts from names, as the annotators page does;
    returns how many were added and each new account with its invite token."""
    added = study_services.study_add_annotators(study=study, users=existing)
    created = study_services.annotators_create_bulk(study=study, names=names, created_by=created_by)
    return added + len(created), created


@dataclass(frozen=True)
class ExportPending:
    """A report export asked for while its report is being computed: try again later."""

    row: ReportCache


def export_for_download(
    *, study: Study, key: str, language: str
) -> exports.ExportFile | ExportPending:
    """One export of :data:`sbs.analysis.exports.FORMATS`, as the report page's download
    buttons get it: a votes format from the current votes; a report format from the
    cached report of the current votes, or :class:`ExportPending` while it is computed
    (the request enqueues it)."""
    spec = exports.FORMATS[key]
    if spec.source is exports.Source.VOTES:
        return exports.export_file(
            study, spec.key, settings=analysis_services.report_settings(study)
        )
    row = analysis_services.report_request(study=study)
    if row.status != ReportCache.Status.DONE or row.report is None:
        return ExportPending(row)
    return exports.export_file(
        study,
        spec.key,
        report=row.report,
        plots=row.plots.get(language),
        fingerprint=row.fingerprint,
    )
