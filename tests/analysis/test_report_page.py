"""The result page over HTTP: numbers derived independently, owners only, the cached job."""

from __future__ import annotations

import base64
import math
import re
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sbs.analysis import services
from sbs.analysis.models import ReportCache
from sbs.analysis.selectors import study_vote_frame
from sbs.studies.models import Answer
from tests import factories
from tests.analysis.test_report_fixtures import (  # noqa: F401
    cast,
    fast_users,
    make_voted_study,
    model_rows,
)
from tests.htmlcheck import script_problems
from workers.tasks import compute_report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_users")]


@pytest.fixture
def voted():
    return make_voted_study()


@pytest.fixture
def owner_client(client, voted):
    client.force_login(voted.owner)
    return client


def _text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no element #{element_id}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def _wilson(k: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def _sign_p(w: int, losses: int) -> float:
    n, k = w + losses, min(w, losses)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def _run_pending_job(study) -> ReportCache:
    row = ReportCache.objects.filter(study=study, status=ReportCache.Status.PENDING).latest(
        "enqueued_at"
    )
    assert compute_report.apply(args=[row.pk]).get() == "done"
    row.refresh_from_db()
    return row


def test_page_shows_counts_and_win_rates_of_the_votes_cast(
    owner_client, voted, django_capture_on_commit_callbacks
):
    counts = Counter(voted.first_outcomes())
    w, lo, t, bb = counts["adapted"], counts["original"], counts["tie"], counts["both_bad"]
    assert w and lo and t and bb  # the plan exercises every outcome
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        html = owner_client.get(reverse("studies:results", args=[voted.study.pk])).content.decode()
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>", html)  # fmt: skip
    assert (voted.adapted, str(w), str(lo), str(t), str(bb)) in rows
    assert (voted.original, str(lo), str(w), str(t), str(bb)) in rows
    assert _text_of(html, "win-rate") == f"{(w + t / 2) / (w + lo + t):.3f}"
    assert _text_of(html, "win-rate-decisive") == f"{w / (w + lo):.3f}"
    low, high = _wilson(w, w + lo)
    assert _text_of(html, "wilson-decisive") == f"[{low:.3f}, {high:.3f}]"
    assert _text_of(html, "sign-p") == f"{_sign_p(w, lo):.4f}"
    # Not computed yet: the page says so, refreshes itself and has enqueued one job.
    assert 'id="recomputing"' in html and 'http-equiv="refresh"' in html
    assert len(callbacks) == 1
    assert ReportCache.objects.filter(study=voted.study).count() == 1
    assert 'id="bootstrap-interval"' in html and "data:image/svg+xml" not in html
    # The tables that need a second or more on a real study wait for the job.
    assert 'id="pending-sections"' in html and 'id="annotators"' not in html


def test_page_and_exports_are_only_for_the_owning_researcher(client, voted):
    urls = [
        reverse("studies:results", args=[voted.study.pk]),
        reverse("studies:export", args=[voted.study.pk, "csv"]),
        reverse("studies:export", args=[voted.study.pk, "json"]),
    ]
    for user in (voted.annotators[0], factories.researcher("someone-else")):
        client.force_login(user)
        for url in urls:
            assert client.get(url).status_code == 404, (user.username, url)
    client.logout()
    assert client.get(urls[0]).status_code == 302  # to the login page
    assert not ReportCache.objects.exists()


def test_job_caches_the_full_report_and_the_page_shows_it(owner_client, voted):
    url = reverse("studies:results", args=[voted.study.pk])
    owner_client.get(url)
    row = _run_pending_job(voted.study)
    assert row.status == ReportCache.Status.DONE and row.report["settings"]["rounds"] == 1000
    assert row.fingerprint == services.report_fingerprint(voted.study)

    started = time.perf_counter()
    html = owner_client.get(url).content.decode()
    render_seconds = time.perf_counter() - started
    assert render_seconds < 2.0  # a cached page does no statistics (measured: ~0.1 s)
    assert 'http-equiv="refresh"' not in html and 'id="recomputing"' not in html
    interval = _text_of(html, "bootstrap-interval")
    low, high = (float(x) for x in interval.strip("[]").split(","))
    assert low <= float(_text_of(html, "win-rate")) <= high
    images = re.findall(r'<img class="plot" alt="[^"]*" src="data:image/svg\+xml;base64,([^"]+)"', html)  # fmt: skip
    assert len(images) == 4
    assert all(base64.b64decode(i).lstrip().startswith(b"<?xml") for i in images)
    assert "<svg" not in html  # never inline SVG markup (the CSP forbids its styles)
    assert script_problems(html) == []
    for section in ("categories", "annotators", "fleiss", "krippendorff", "power", "ranking"):
        assert f'id="{section}"' in html
    # Annotators table: every annotator with their own vote count (repeats included).
    per_annotator = Counter(name for (_, name, _, _) in voted.planned.values())
    for name, n in per_annotator.items():
        assert re.search(rf"<td>{name}</td><td>{n}</td>", html), name
    # Self-consistency: the first annotator answered every repeat with both bad.
    repeats = [
        (q, name, o) for (q, name, o, rep) in voted.planned.values() if rep
    ]  # planned outcome of the repeat
    firsts = {(q, name): o for (q, name, o, rep) in voted.planned.values() if not rep}
    same = sum(firsts[(q, name)] == o for q, name, o in repeats)
    assert f"{same} of {len(repeats)} repeated pairs" in _text_of(html, "self-consistency")


def test_a_new_vote_invalidates_the_cache_and_enqueues_once(
    owner_client, voted, django_capture_on_commit_callbacks
):
    url = reverse("studies:results", args=[voted.study.pk])
    owner_client.get(url)
    first = _run_pending_job(voted.study)
    cast(voted, voted.annotators[1], "original")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stale = owner_client.get(url).content.decode()
        owner_client.get(url)  # a refresh of the page: the same job, not another
    assert len(callbacks) == 1
    assert 'id="recomputing"' in stale and 'http-equiv="refresh"' in stale
    counts = Counter(voted.first_outcomes())
    assert _text_of(stale, "fresh-counts").startswith(
        f"{counts['adapted']} wins, {counts['original']} losses"
    )
    second = _run_pending_job(voted.study)
    assert second.fingerprint != first.fingerprint
    assert second.report["verdict"]["losses"] == counts["original"]
    assert not ReportCache.objects.filter(pk=first.pk).exists()  # the old report is dropped
    html = owner_client.get(url).content.decode()
    assert 'id="recomputing"' not in html
    assert f"<td>{voted.adapted}</td><td>{counts['adapted']}</td><td>{counts['original']}</td>" in html  # fmt: skip


def test_a_job_superseded_by_newer_votes_skips_its_work(voted):
    old = services.report_request(study=voted.study)
    cast(voted, voted.annotators[2], "tie")
    new = services.report_request(study=voted.study)
    assert old.pk != new.pk
    assert compute_report.apply(args=[old.pk]).get() == "superseded"
    assert compute_report.apply(args=[new.pk]).get() == "done"
    assert compute_report.apply(args=[new.pk]).get() == "not claimed"  # a redelivery
    new.refresh_from_db()
    assert new.status == ReportCache.Status.DONE


def test_lost_jobs_are_sent_again_and_a_redelivered_one_reclaims_its_row(
    voted, django_capture_on_commit_callbacks
):
    row = services.report_request(study=voted.study)
    long_ago = row.enqueued_at - services.STALE_AFTER - timedelta(seconds=1)
    ReportCache.objects.filter(pk=row.pk).update(enqueued_at=long_ago)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.report_request(study=voted.study).pk == row.pk
        services.report_request(study=voted.study)  # sent again once, not on every view
    assert len(callbacks) == 1
    # A worker holds the row: a redelivered task leaves it alone while the lease is live.
    soon = timezone.now() + timedelta(minutes=1)
    claimed = {"status": ReportCache.Status.RUNNING, "attempts": 1, "fence": 1}
    ReportCache.objects.filter(pk=row.pk).update(**claimed, lease_expires_at=soon)
    assert compute_report.apply(args=[row.pk]).get() == "not claimed"
    # It died mid-job: its lease expires, and the redelivered task reclaims the row.
    ReportCache.objects.filter(pk=row.pk).update(lease_expires_at=long_ago)
    assert compute_report.apply(args=[row.pk]).get() == "done"
    row.refresh_from_db()
    assert row.status == ReportCache.Status.DONE and row.fence == 2 and row.attempts == 2


def test_questions_with_an_excluded_answer_leave_the_analysis(voted):
    before = services.report_fingerprint(voted.study)
    answer = Answer.objects.filter(run__study=voted.study, question__external_id="q3").first()
    Answer.objects.filter(pk=answer.pk).update(excluded=True)
    assert services.report_fingerprint(voted.study) != before
    frame = study_vote_frame(voted.study)
    assert "q3" not in set(frame["question"]) and "q2" in set(frame["question"])
    expected = sum(1 for (q, _, _, _) in voted.planned.values() if q != "q3")
    assert len(frame) == expected


def test_a_study_without_votes_has_a_page_and_a_report(client):
    owner = factories.researcher()
    study = factories.open_study_with_answers(owner, model_rows(), [factories.annotator("x")], n=4)
    client.force_login(owner)
    url = reverse("studies:results", args=[study.pk])
    assert "No votes yet." in client.get(url).content.decode()
    row = _run_pending_job(study)
    assert row.report["verdict"]["n_votes"] == 0 and row.report["ranking"] is None
    html = client.get(url).content.decode()
    assert 'id="recomputing"' not in html and "No votes yet." in html


def test_a_failed_job_is_tried_again_by_a_later_page_view(
    owner_client, voted, monkeypatch, django_capture_on_commit_callbacks
):
    url = reverse("studies:results", args=[voted.study.pk])
    owner_client.get(url)
    row = ReportCache.objects.get(study=voted.study)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the statistics")

    monkeypatch.setattr(services, "build_report", broken)
    compute_report.apply(args=[row.pk])  # the task fails
    row.refresh_from_db()
    assert row.status == ReportCache.Status.FAILED and "a bug in the statistics" in row.error
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        html = owner_client.get(url).content.decode()
    assert len(callbacks) == 0  # not at once: the page refreshes itself every 3 s
    assert "The last computation failed" in html and 'http-equiv="refresh"' in html

    monkeypatch.undo()  # the bug is fixed (a deploy, or it was transient)
    failed_at = timezone.now() - services.RETRY_FAILED_AFTER - timedelta(seconds=1)
    ReportCache.objects.filter(pk=row.pk).update(finished_at=failed_at)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        owner_client.get(url)
        owner_client.get(url)  # a refresh: the same retry, not another
    assert len(callbacks) == 1
    assert _run_pending_job(voted.study).pk == row.pk
    html = owner_client.get(url).content.decode()
    assert 'id="recomputing"' not in html and "The last computation failed" not in html
    assert 'id="annotators"' in html


def test_category_names_may_wrap_at_underscores_and_stay_escaped():
    from sbs.analysis.templatetags.report_format import breakable

    assert str(breakable("general_knowledge")) == "general_<wbr>knowledge"
    assert str(breakable("<b>_x")) == "&lt;b&gt;_<wbr>x"
