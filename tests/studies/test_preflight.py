"""Generation settings are checked against the models before a study is created or started:
a missing chat template, a context too short for the longest prompt plus the new tokens, a
minimum above the maximum. Real model files: the tiny Llama (SmolLM2's tokenizer, context
512) and the shipped SmolLM2 GGUF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.urls import reverse

from adaptation.shipped import smollm2_gguf
from sbs.studies import preflight
from sbs.studies.models import GenerationRun, Study
from tests import factories
from tests.accounts.conftest import form_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def res_client(client):
    client.force_login(factories.researcher("preflight-res"))
    return client


def _form(qset, a, b, **over):
    body = {
        "name": "S", "question_set": qset.pk, "model_a": a.pk, "model_b": b.pk,
        "max_new_tokens": 32, "min_new_tokens": 0, "temperature": 0, "seed": 0,
        "use_chat_template": "on", "batch_size": 4, "repeat_share": 0,
        "form_token": form_token(),
    }  # fmt: skip
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def _without_template(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_min_above_max_is_explained_on_its_field_in_both_languages(res_client, two_models):
    """Before: "min_new_tokens must be between 0 and max_new_tokens", in English only."""
    qset = factories.question_set(2)
    body = _form(qset, *two_models, max_new_tokens=16, min_new_tokens=50)
    html = res_client.post(reverse("studies:list"), body).content.decode()
    assert "The minimum of new tokens (50) is above the maximum (16)" in html
    assert 'id="id_min_new_tokens"' in html.split("above the maximum")[1]  # beside its field
    russian = res_client.post(reverse("studies:list"), body, HTTP_ACCEPT_LANGUAGE="ru")
    assert "Минимум новых токенов (50) больше максимума (16)" in russian.content.decode()
    assert not Study.objects.exists()


def test_a_model_without_a_chat_template_is_named_when_the_template_is_on(
    res_client, two_models, tiny_model_dir, tmp_path
):
    plain = factories.model_entry("Plain-NoTemplate", _without_template(tiny_model_dir, tmp_path))
    qset = factories.question_set(2)
    response = res_client.post(reverse("studies:list"), _form(qset, two_models[0], plain))
    html = response.content.decode()
    assert response.status_code == 200 and not Study.objects.exists()
    assert "Plain-NoTemplate has no chat template" in html
    assert "Original-SmolTiny has no chat template" not in html  # it has one
    off = _form(qset, two_models[0], plain, use_chat_template=None)  # unchecked
    assert res_client.post(reverse("studies:list"), off).status_code == 302
    assert Study.objects.count() == 1


def test_a_context_shorter_than_prompt_plus_new_tokens_is_refused_with_the_numbers(
    res_client, two_models
):
    qset = factories.question_set(3)  # the tiny models read 512 tokens
    html = res_client.post(
        reverse("studies:list"), _form(qset, *two_models, max_new_tokens=500)
    ).content.decode()
    assert not Study.objects.exists()
    assert "Original-SmolTiny reads at most 512 tokens, but the longest prompt" in html
    assert "plus 500 new tokens" in html and "Lower the maximum of new tokens to" in html
    room = int(html.split("Lower the maximum of new tokens to ")[1].split(" ")[0])
    assert 400 < room < 512
    fits = _form(qset, *two_models, max_new_tokens=room)
    assert res_client.post(reverse("studies:list"), fits).status_code == 302
    # Without the chat template the prompt is shorter, and the same check counts it so.
    plain = preflight.generation_problems(
        models=list(two_models),
        questions=list(qset.questions.values_list("external_id", "text")),
        generation={"max_new_tokens": room + 1, "use_chat_template": False},
    )
    assert plain == []


def test_start_refuses_settings_that_do_not_fit_and_starts_nothing(
    res_client, two_models, django_capture_on_commit_callbacks
):
    """A study imported (or made before the check) is checked again on the start button."""
    owner = res_client.session["_auth_user_id"]
    study = factories.draft_study(factories.researcher("other-owner"), two_models, n=2)
    Study.objects.filter(pk=study.pk).update(
        owner_id=owner, generation={**study.generation, "max_new_tokens": 600}
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = res_client.post(reverse("studies:action", args=[study.pk, "start"]), follow=True)
    assert "reads at most 512 tokens" in response.content.decode()
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT and not GenerationRun.objects.exists()
    assert callbacks == []


def test_a_gguf_model_is_checked_from_its_own_key_values(res_client, model_store, tmp_path):
    """No conversion yet: the file's header gives the chat template and the context
    (8192 for SmolLM2); prompts are not counted, the new tokens alone are."""
    source = tmp_path / "gguf"
    source.mkdir()
    shutil.copy(smollm2_gguf(), source / "smollm2.gguf")
    entry = factories.model_entry("Smol-GGUF", source / "smollm2.gguf")
    assert entry.kind == "gguf"
    facts = preflight.model_facts(entry)
    assert facts.has_chat_template is True and facts.context_length == 8192
    assert facts.tokenizer_folder is None
    other = factories.model_entry("Smol-GGUF-copy", source / "smollm2.gguf")
    qset = factories.question_set(2)
    too_long = res_client.post(
        reverse("studies:list"), _form(qset, entry, other, max_new_tokens=8192)
    ).content.decode()
    assert "Smol-GGUF reads at most 8192 tokens, prompt included" in too_long
    ok = res_client.post(reverse("studies:list"), _form(qset, entry, other, max_new_tokens=96))
    assert ok.status_code == 302


def test_the_gguf_scanner_agrees_with_the_gguf_library_and_survives_garbage(tmp_path):
    import gguf

    path = smollm2_gguf()
    meta = preflight._gguf_metadata(path)
    reader = gguf.GGUFReader(str(path))
    assert meta["general.architecture"] == reader.fields["general.architecture"].contents()
    assert meta["llama.context_length"] == reader.fields["llama.context_length"].contents()
    assert meta["tokenizer.chat_template"] == reader.fields["tokenizer.chat_template"].contents()
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(path.read_bytes()[:5000])
    assert preflight._gguf_metadata(truncated) == {}
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\xff" * 64)
    assert preflight._gguf_metadata(junk) == {}
