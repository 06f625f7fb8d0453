"""Reads for the model pages."""

from __future__ import annotations

from django.db.models import QuerySet

from sbs.catalog.models import AdaptationJob, ModelEntry, ModelImportJob


def models_ready() -> QuerySet[ModelEntry]:
    return ModelEntry.objects.ready().select_related("parent")


def recent_adaptations(limit: int = 50) -> list[AdaptationJob]:
    return list(AdaptationJob.objects.select_related("parent", "result")[:limit])


def recent_imports(limit: int = 50) -> list[ModelImportJob]:
    return list(ModelImportJob.objects.select_related("parent")[:limit])
