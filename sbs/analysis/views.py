"""The result page of a study: the verdict and the speed table side by side."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from sbs.accounts.roles import researcher_required
from sbs.analysis.selectors import speed_rows, study_vote_frame
from sbs.analysis.stats.verdict import verdict
from sbs.studies.models import Study

BOOTSTRAP_ROUNDS = 1000


@researcher_required
def results(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk, owner=request.user)
    frame = study_vote_frame(study)
    a, b = study.model_b.name, study.model_a.name  # the adapted model's point of view
    first = frame[~frame["repeat"]] if len(frame) else frame
    result = verdict(first, a, b, rounds=BOOTSTRAP_ROUNDS if len(first) else 0, seed=study.seed)
    speed = speed_rows(study)
    ratio = None
    if len(speed) == 2 and speed[0].median_tokens_per_second > 0:
        ratio = {
            "tokens_per_second": speed[1].median_tokens_per_second
            / speed[0].median_tokens_per_second,
            "chars_per_second": speed[1].median_chars_per_second
            / max(speed[0].median_chars_per_second, 1e-9),
            "new_tokens": speed[1].median_new_tokens / max(speed[0].median_new_tokens, 1e-9),
        }
    return render(
        request,
        "analysis/results.html",
        {"study": study, "v": result, "speed": speed, "ratio": ratio, "n_votes": len(frame)},
    )
