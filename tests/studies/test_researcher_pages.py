"""The researcher's side over HTTP and the command line."""

from __future__ import annotations

import json
import re
import shutil
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from sbs.accounts.models import Invite
from sbs.catalog.models import ModelEntry
from sbs.questions.models import Question, QuestionSet
from sbs.studies.models import Assignment, GenerationRun, Study
from tests import factories
from tests.accounts.conftest import shown_links

pytestmark = pytest.mark.django_db


@pytest.fixture
def res_client(client):
    client.force_login(factories.researcher())
    return client


def test_import_page_saves_a_good_file(res_client):
    data = "id,question,category\nq1,Что такое ДНК?,science\nq2,Сколько будет 2+2?,math\n"
    upload = _upload("set.csv", data.encode("utf-8-sig"))
    response = res_client.post(reverse("questions:sets"), {"name": "Наука", "file": upload})
    assert response.status_code == 302
    qset = QuestionSet.objects.get(name="Наука")
    assert list(qset.questions.values_list("external_id", "text")) == [("q1", "Что такое ДНК?"), ("q2", "Сколько будет 2+2?")]  # fmt: skip


def test_import_page_names_the_bad_line_and_writes_nothing(res_client):
    data = "question,category\nхороший вопрос,a\nплохая строка,b\n".encode("cp1251")
    response = res_client.post(
        reverse("questions:sets"), {"name": "bad", "file": _upload("bad.csv", data)}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "line 2" in html and "UTF-8" in html
    assert not QuestionSet.objects.exists() and not Question.objects.exists()


def test_import_command_reports_every_error(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": ""}) + "\n" + json.dumps({"text": "x"}) + "\n")
    with pytest.raises(CommandError) as err:
        call_command("import_questions", str(path), "--set", "x")
    assert "line 1: empty question" in str(err.value) and "line 2: missing key “question”" in str(
        err.value
    )
    assert not QuestionSet.objects.exists()


def test_import_command_imports_the_demo_set():
    out = StringIO()
    call_command("import_questions", "data/demo_questions_ru.jsonl", "--set", "demo", stdout=out)
    assert "imported 78 questions" in out.getvalue()
    assert (
        QuestionSet.objects.get(name="demo")
        .questions.filter(category="reasoning_over_text")
        .count()
        == 20
    )


def test_register_model_page_accepts_a_folder_and_refuses_pickles(
    res_client, model_store, tiny_model_dir, tmp_path, settings
):
    """A server path is imported by a worker, not in the request: the page reserves the name
    and the job checks and copies the files (run in-process here)."""
    from sbs.catalog.models import ModelImportJob
    from workers.tasks import import_model

    settings.MODEL_IMPORT_ROOTS = [str(tiny_model_dir.parent), str(tmp_path)]
    response = res_client.post(
        reverse("catalog:models"), {"name": "tiny", "path": str(tiny_model_dir)}
    )
    assert response.status_code == 302
    reserved = ModelEntry.objects.get(name="tiny")
    assert not reserved.ready and not (model_store / "tiny").exists()
    job = ModelImportJob.objects.get(name="tiny")
    assert import_model.apply(args=[job.pk]).get() == "done"
    entry = ModelEntry.objects.get(name="tiny")
    assert entry.pk == reserved.pk and entry.ready
    assert entry.kind == "hf_folder" and entry.architecture == "LlamaForCausalLM"
    assert (model_store / entry.path / "model.safetensors").exists()

    evil = tmp_path / "evil"
    shutil.copytree(tiny_model_dir, evil)
    (evil / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    response = res_client.post(reverse("catalog:models"), {"name": "evil", "path": str(evil)})
    assert response.status_code == 302
    job = ModelImportJob.objects.get(name="evil")
    assert import_model.apply(args=[job.pk]).get() == "refused"
    job.refresh_from_db()
    assert job.status == "failed" and "pytorch_model.bin" in job.error
    assert not ModelEntry.objects.filter(name="evil").exists()  # the name is free again
    assert "pytorch_model.bin" in res_client.get(reverse("catalog:models")).content.decode()


def test_a_refused_upload_is_explained_in_the_readers_language(res_client, model_store, tmp_path):
    """The model files' checks speak English (no Django in adaptation/); the page translates
    the refusal into the reader's language."""
    from tests.studies.test_modelfiles import folder_members, make_hf_folder, write_zip

    members = folder_members(make_hf_folder(tmp_path / "tiny"), "tiny/")
    members.append(("tiny/pytorch_model.bin", b"\x80\x04pickle"))
    archive = write_zip(tmp_path / "evil.zip", members)

    def post(language):
        upload = _upload("evil.zip", archive.read_bytes())
        response = res_client.post(reverse("catalog:models"), {"name": "evil", "archive": upload},
                                   headers={"accept-language": language})  # fmt: skip
        assert response.status_code == 200
        return response.content.decode()

    russian = post("ru")
    assert "tiny/pytorch_model.bin (в архиве upload.zip): веса в формате pickle (.bin)" in russian
    assert "pickled weights" not in russian
    english = post("en")
    assert "tiny/pytorch_model.bin (in upload.zip): pickled weights (.bin)" in english
    assert "веса" not in english
    assert not ModelEntry.objects.exists() and not list(model_store.glob("*"))


def test_register_model_command_refuses_custom_code(
    model_store, tiny_model_dir, tmp_path, settings
):
    settings.MODEL_IMPORT_ROOTS = [str(tmp_path)]
    folder = tmp_path / "custom"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CommandError, match="auto_map"):
        call_command("register_model", "custom", str(folder))
    assert not ModelEntry.objects.exists()


def test_study_created_from_the_page_starts_generation_runs(
    res_client, two_models, django_capture_on_commit_callbacks
):
    qset = factories.question_set(3)
    response = res_client.post(
        reverse("studies:list"),
        {
            "name": "S",
            "question_set": qset.pk,
            "model_a": two_models[0].pk,
            "model_b": two_models[1].pk,
            "max_new_tokens": 16,
            "temperature": 0,
            "seed": 5,
            "use_chat_template": "on",
            "batch_size": 4,
            "repeat_share": 0,
            "form_token": "t" * 24,
        },  # fmt: skip
    )
    study = Study.objects.get(name="S")
    assert response.url == reverse("studies:detail", args=[study.pk])
    assert study.generation["max_new_tokens"] == 16 and study.generation["seed"] == 5
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        res_client.post(reverse("studies:action", args=[study.pk, "start"]))
    assert len(callbacks) == 2  # one task per run, sent only once the transaction commits
    study.refresh_from_db()
    assert study.status == Study.Status.GENERATING
    runs = list(GenerationRun.objects.filter(study=study).order_by("pk"))
    assert [r.model_id for r in runs] == [two_models[0].pk, two_models[1].pk]
    assert all(r.status == "pending" and r.total_count == 3 for r in runs)
    again = res_client.post(reverse("studies:action", args=[study.pk, "start"]), follow=True)
    assert "already been started" in again.content.decode()
    assert GenerationRun.objects.filter(study=study).count() == 2


def test_same_model_twice_is_refused(res_client, two_models):
    qset = factories.question_set(2)
    response = res_client.post(
        reverse("studies:list"),
        {
            "name": "S",
            "question_set": qset.pk,
            "model_a": two_models[0].pk,
            "model_b": two_models[0].pk,
            "max_new_tokens": 16,
            "temperature": 0,
            "seed": 0,
            "batch_size": 4,
            "repeat_share": 0,
        },  # fmt: skip
    )
    assert response.status_code == 200 and not Study.objects.exists()


def test_bulk_annotators_get_one_time_invite_links(client, two_models):
    owner = factories.researcher()
    client.force_login(owner)
    study = factories.open_study_with_answers(owner, two_models, [], n=4)
    response = client.post(
        reverse("studies:annotators", args=[study.pk]),
        {"names": "Ирина Петрова\nivan\n", "form_token": "t" * 24},
        follow=True,
    )
    html = response.content.decode()
    links = re.findall(r"http://testserver/invite/#[\w-]+", html)
    assert len(links) == 2 and Invite.objects.count() == 2
    # the study is open, so the new annotators got balanced assignments at once
    assert Assignment.objects.filter(pair__study=study).count() == 8

    client.logout()
    token = shown_links(html)["ivan"]
    assert client.post(reverse("invite"), {"token": token}).status_code == 200
    response = client.post(
        reverse("invite"),
        {"token": token, "new_password1": "a-long-pass-9876", "new_password2": "a-long-pass-9876"},
    )
    assert response.status_code == 302
    assert client.get(reverse("voting:my_studies")).status_code == 200
    client.logout()
    assert client.post(reverse("invite"), {"token": token}).status_code == 404  # used once
    assert client.login(username="ivan", password="a-long-pass-9876")


def _upload(name, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_researcher_excludes_an_answer_that_names_its_model(client, two_models):
    from sbs.studies.models import Answer

    owner = factories.researcher()
    study = factories.open_study_with_answers(owner, two_models, [], n=2)
    answer = Answer.objects.filter(run__study=study).first()
    client.force_login(owner)
    url = reverse("studies:answers", args=[study.pk])
    client.post(url, {"answer": answer.pk, "decision": "exclude"})
    answer.refresh_from_db()
    assert answer.excluded
    assert study.pairs.get(question=answer.question).status == "withdrawn"
    client.post(url, {"answer": answer.pk, "decision": "show"})
    answer.refresh_from_db()
    assert not answer.excluded and answer.reviewed
    assert study.pairs.get(question=answer.question).status == "shown"
    assert client.post(url, {"answer": answer.pk, "decision": "nonsense"}).status_code == 400
    other = factories.researcher("other")
    client.force_login(other)
    assert (
        client.post(
            reverse("studies:answers", args=[study.pk]),
            {"answer": answer.pk, "decision": "exclude"},
        ).status_code
        == 404
    )
    answer.refresh_from_db()
    assert not answer.excluded


def test_an_interrupted_run_is_requeued_with_fresh_attempts(
    two_models, django_capture_on_commit_callbacks
):
    from sbs.studies import services
    from sbs.studies.models import GenerationRun

    study = factories.draft_study(factories.researcher(), two_models, n=2)
    run = GenerationRun.objects.create(
        study=study, model=study.model_a, status="running", attempts=3
    )
    done = GenerationRun.objects.create(study=study, model=study.model_b, status="done", attempts=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.run_requeue(run=run)
        services.run_requeue(run=done)
    run.refresh_from_db()
    done.refresh_from_db()
    assert (run.status, run.attempts) == ("pending", 0)
    assert (done.status, done.attempts) == ("done", 1)  # a finished run is never reset
    assert len(callbacks) == 2  # a re-sent done run is a no-op: its claim fails
