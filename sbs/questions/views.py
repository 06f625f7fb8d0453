"""The researcher's question-set and benchmark pages (benchmark runs of a model or of a
study's two models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from sbs.accounts.roles import AuthedRequest, researcher_required
from sbs.catalog import answers
from sbs.catalog.forms import AnswerImportForm
from sbs.catalog.models import ModelEntry
from sbs.questions import selectors, services
from sbs.questions.forms import (
    BenchmarkImportForm,
    BenchmarkRunForm,
    QuestionImportForm,
    ShippedBenchmarkForm,
)
from sbs.questions.importers import QuestionFileError, detect_format
from sbs.questions.models import Benchmark, QuestionSet
from sbs.studies.models import Study, with_systems

T = TypeVar("T")


def _imported(do: Callable[[], T]) -> tuple[T | None, list[str]]:
    """Run an import; a refusal (nothing was written) becomes the lines the page lists."""
    try:
        return do(), []
    except QuestionFileError as exc:
        return None, [str(e) for e in exc.errors]
    except services.ServiceError as exc:
        return None, [str(exc)]


@researcher_required
def question_sets(request: AuthedRequest) -> HttpResponse:
    form = QuestionImportForm(request.POST or None, request.FILES or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        qset, errors = _imported(
            lambda: services.question_set_import(
                name=form.cleaned_data["name"],
                data=upload.read(),
                filename=upload.name,
                user=request.user,
            )
        )
        if qset is not None:
            messages.success(
                request, _("Imported %(n)d questions.") % {"n": qset.questions.count()}
            )
            return redirect("questions:sets")
    sets = selectors.question_sets_with_counts()
    return render(
        request, "questions/question_sets.html", {"form": form, "sets": sets, "errors": errors}
    )


@researcher_required
def question_set_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    """The questions of a set, the systems whose answers to them were imported, and the
    import of a file of pre-generated answers (refused whole, with every problem by line)."""
    qset = get_object_or_404(QuestionSet, pk=pk)
    form = AnswerImportForm(request.POST or None, request.FILES or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        systems, errors = _imported(
            lambda: answers.answers_import(
                data=upload.read(),
                file_format=detect_format(upload.name),
                question_set=qset,
                user=request.user,
            )
        )
        if systems is not None:
            messages.success(
                request,
                _("Imported the answers of %(systems)s: they can now be compared in a study.")
                % {"systems": ", ".join(s.name for s in systems)},
            )
            return redirect("questions:detail", pk=qset.pk)
    return render(
        request,
        "questions/question_set_detail.html",
        {
            "qset": qset,
            "questions": qset.questions.all(),
            "systems": selectors.systems_answering(qset),
            "form": form,
            "errors": errors,
        },
    )


# ------------------------------------------------------------------------------ benchmarks


@researcher_required
def benchmarks(request: AuthedRequest) -> HttpResponse:
    """The benchmarks, the import of a file and of a set shipped on PyPI."""
    action = request.POST.get("action") if request.method == "POST" else None
    form = BenchmarkImportForm(
        request.POST if action == "upload" else None, request.FILES if action == "upload" else None
    )
    shipped_form = ShippedBenchmarkForm(request.POST if action == "shipped" else None)
    errors: list[str] = []
    benchmark: Benchmark | None = None
    if action == "upload" and form.is_valid():
        upload = form.cleaned_data["file"]
        benchmark, errors = _imported(
            lambda: services.benchmark_import(
                name=form.cleaned_data["name"],
                data=upload.read(),
                filename=upload.name,
                user=request.user,
                language=form.cleaned_data["language"],
            )
        )
    elif action == "shipped" and shipped_form.is_valid():
        benchmark, errors = _imported(
            lambda: services.benchmark_import_shipped(
                key=shipped_form.cleaned_data["shipped"],
                name=shipped_form.cleaned_data["name"],
                user=request.user,
            )
        )
    if benchmark is not None:
        messages.success(request, _("Imported %(n)d items.") % {"n": benchmark.items.count()})
        return redirect("questions:benchmark", benchmark.pk)
    return render(
        request,
        "questions/benchmarks.html",
        {
            "form": form,
            "shipped_form": shipped_form,
            "benchmarks": selectors.benchmarks_with_counts(),
            "errors": errors,
        },
    )


@researcher_required
def benchmark_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    benchmark = get_object_or_404(Benchmark, pk=pk)
    return render(
        request,
        "questions/benchmark_detail.html",
        {
            "benchmark": benchmark,
            "categories": selectors.benchmark_categories(benchmark),
            "items": benchmark.items.all()[:BENCHMARK_ITEMS_SHOWN],
            "n_items": benchmark.items.count(),
            "shown": BENCHMARK_ITEMS_SHOWN,
            "runs": benchmark.runs.select_related("model").order_by("model__name"),
        },
    )


BENCHMARK_ITEMS_SHOWN = 200


def _runs_page(
    request: AuthedRequest,
    models: list[ModelEntry],
    *,
    title: str,
    back: str | None,
    study: Study | None = None,
) -> HttpResponse:
    form = BenchmarkRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            started = services.benchmark_runs_start(
                models=models,
                benchmarks=list(form.cleaned_data["benchmarks"]),
                prompt_format=form.cleaned_data["prompt_format"],
                user=request.user,
            )
        except services.ServiceError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("%(n)d benchmark runs requested.") % {"n": len(started)})
            return redirect(request.path)
    return render(
        request,
        "questions/benchmark_runs.html",
        {
            "form": form,
            "title": title,
            "back": back,
            "study": study,
            "models": models,
            "runs": selectors.runs_for_models(models),
        },
    )


@researcher_required
def model_benchmarks(request: AuthedRequest, model_pk: int) -> HttpResponse:
    """A model's benchmark runs, and the form that starts more."""
    model = get_object_or_404(ModelEntry.objects.ready().with_files(), pk=model_pk)
    return _runs_page(
        request,
        [model],
        title=_("Benchmarks of %(model)s") % {"model": model.name},
        back=reverse("catalog:models"),
    )


@researcher_required
def study_benchmarks(request: AuthedRequest, study_pk: int) -> HttpResponse:
    """The systems of a study on the same benchmarks: the forgetting table of the results
    page reads the runs of its first two."""
    study = get_object_or_404(with_systems(), pk=study_pk, owner=request.user)
    return _runs_page(
        request,
        [m for m in study.systems() if not m.is_imported],
        title=_("Benchmarks of study “%(study)s”") % {"study": study.name},
        back=reverse("studies:detail", args=[study.pk]),
        study=study,
    )
