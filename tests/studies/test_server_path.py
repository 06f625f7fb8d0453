"""Registering a model by a path on the server: confined to MODEL_IMPORT_ROOTS, read without
following links, and silent about everything outside the roots."""

from __future__ import annotations

import os
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from adaptation import modelfiles
from adaptation.modelfiles import ModelFileError, ServerPathError, install_from_server_path
from sbs.catalog.models import ModelEntry
from tests import factories
from tests.studies.test_modelfiles import make_gguf, make_hf_folder


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A root with a model in it, and outside it a model and a secret the user may not read."""
    root = tmp_path / "models"
    outside = tmp_path / "private"
    return {
        "root": root,
        "model": make_hf_folder(root / "tiny"),
        "outside_model": make_hf_folder(outside / "other-model"),
        "secret": _write(outside / "id_rsa", "BEGIN PRIVATE KEY"),
        "store": tmp_path / "store",
    }


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _refusal(path: str, roots: list[Path], store: Path) -> str:
    with pytest.raises(ServerPathError) as err:
        install_from_server_path(path, roots, store, "m")
    assert not err.value.disabled
    return str(err.value).replace(path, "<path>")


def test_a_model_under_a_root_is_installed(layout: dict[str, Path]):
    root, model = layout["root"], layout["model"]
    (model / "blobs").mkdir()
    (model / "model.safetensors").rename(model / "blobs" / "abc")
    (model / "model.safetensors").symlink_to(Path("blobs") / "abc")  # inside: copied plain
    result = install_from_server_path(str(model), [root], layout["store"], "tiny")
    assert result.root == layout["store"] / "tiny"
    assert result.sha256 == modelfiles.inspect_model_path(model).sha256
    assert not (layout["store"] / "tiny" / "model.safetensors").is_symlink()


def test_gguf_file_and_the_root_as_a_symlink_work(layout: dict[str, Path], tmp_path: Path):
    gguf = make_gguf(layout["root"] / "ggufs" / "m.gguf")
    alias = tmp_path / "alias"
    alias.symlink_to(layout["root"])  # the administrator's root may be a link
    for typed in (str(gguf), str(alias / "ggufs" / "m.gguf")):
        store = tmp_path / f"store-{len(typed)}"
        assert install_from_server_path(typed, [alias], store, "g").kind == "gguf"


def test_outside_missing_unreadable_and_linked_paths_get_one_message(
    layout: dict[str, Path], tmp_path: Path
):
    root, store = layout["root"], layout["store"]
    (root / "link-out").symlink_to(layout["outside_model"])
    (root / "dangling").symlink_to(tmp_path / "nothing-here")
    (root / "sub").mkdir()
    (root / "sub" / "deeper").symlink_to(layout["outside_model"].parent)
    locked = make_hf_folder(root / "locked")
    typed = [
        str(layout["outside_model"]),  # outside the roots, exists
        str(layout["secret"]),  # outside, a file
        str(tmp_path / "private" / "absent"),  # outside, missing
        str(root / "absent"),  # inside, missing
        str(root / "link-out"),  # a symlink to a model outside
        str(root / "dangling"),  # a dangling symlink
        str(root / "sub" / "deeper" / "other-model"),  # through a linked folder
        f"{root}/../private/other-model",  # '..' back out
        "tiny",  # relative
    ]
    if os.geteuid() != 0:  # root reads through permissions; the check is meaningless then
        locked.chmod(0)
        typed.append(str(locked))
    try:
        messages = {_refusal(path, [root], store) for path in typed}
    finally:
        locked.chmod(0o755)
    assert len(messages) == 1, messages
    [message] = messages
    assert "id_rsa" not in message and "private" not in message and "other-model" not in message
    assert not store.exists() or list(store.iterdir()) == []


def test_no_roots_means_registering_by_path_is_refused(layout: dict[str, Path]):
    with pytest.raises(ServerPathError, match="disabled") as err:
        install_from_server_path(str(layout["model"]), [], layout["store"], "m")
    assert err.value.disabled


def test_hard_links_are_refused_like_symlinks(layout: dict[str, Path]):
    root, model = layout["root"], layout["model"]
    (model / "README.md").unlink(missing_ok=True)
    os.link(layout["secret"], model / "README.md")
    with pytest.raises(ModelFileError, match=r"README\.md: is a hard link"):
        install_from_server_path(str(model), [root], layout["store"], "m")
    gguf = make_gguf(layout["root"] / "g.gguf")
    os.link(gguf, layout["root"] / "g2.gguf")
    with pytest.raises(ModelFileError, match="is a hard link"):
        install_from_server_path(str(gguf), [root], layout["store"], "g")
    assert not layout["store"].exists() or list(layout["store"].iterdir()) == []


def test_a_file_swapped_for_a_symlink_after_the_check_is_not_read(
    layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    """The race: the folder passes the checks, then README.md becomes a link to the secret."""
    model = layout["model"]
    _write(model / "README.md", "# tiny")
    checked = modelfiles._member_sizes

    def swap_after_check(folder, limit):  # type: ignore[no-untyped-def]
        sizes = checked(folder, limit)
        (model / "README.md").unlink()
        (model / "README.md").symlink_to(layout["secret"])
        return sizes

    monkeypatch.setattr(modelfiles, "_member_sizes", swap_after_check)
    with pytest.raises(ModelFileError, match=r"README\.md"):
        install_from_server_path(str(model), [layout["root"]], layout["store"], "m")
    copied = [p.read_bytes() for p in layout["store"].rglob("*") if p.is_file()]
    assert all(b"PRIVATE KEY" not in data for data in copied)


def test_a_folder_swapped_for_a_symlink_after_opening_is_not_followed(
    layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    """The model folder itself is renamed away and replaced by a link to a folder outside: the
    copy keeps reading the folder that was opened and checked."""
    model, evil = layout["model"], layout["outside_model"]
    (evil / "config.json").write_text('{"architectures": ["EvilForCausalLM"]}')
    checked = modelfiles._member_sizes

    def swap_after_check(folder, limit):  # type: ignore[no-untyped-def]
        sizes = checked(folder, limit)
        model.rename(model.with_name("moved"))
        model.symlink_to(evil)
        return sizes

    monkeypatch.setattr(modelfiles, "_member_sizes", swap_after_check)
    result = install_from_server_path(str(model), [layout["root"]], layout["store"], "m")
    assert result.architecture == "LlamaForCausalLM"


# --------------------------------------------------------------------------- web and command


@pytest.fixture
def res_client(client):  # type: ignore[no-untyped-def]
    client.force_login(factories.researcher())
    return client


@pytest.mark.django_db
def test_register_page_refuses_a_server_path_when_no_roots_are_configured(
    res_client, settings, model_store, layout
):  # type: ignore[no-untyped-def]
    settings.MODEL_IMPORT_ROOTS = []
    response = res_client.post(
        reverse("catalog:models"), {"name": "tiny", "path": str(layout["model"])}
    )
    assert response.status_code == 200
    assert "MODEL_IMPORT_ROOTS" in response.content.decode()
    assert not ModelEntry.objects.exists()


@pytest.mark.django_db
def test_register_page_says_the_same_for_outside_missing_and_linked_paths(
    res_client, settings, model_store, layout
):  # type: ignore[no-untyped-def]
    root = layout["root"]
    settings.MODEL_IMPORT_ROOTS = [str(root)]
    (root / "link-out").symlink_to(layout["outside_model"])
    from sbs.catalog.models import ModelImportJob
    from workers.tasks import import_model

    messages = set()
    for n, typed in enumerate(
        (str(layout["outside_model"]), str(root / "absent"), str(root / "link-out"))
    ):
        response = res_client.post(reverse("catalog:models"), {"name": f"x{n}", "path": typed})
        assert response.status_code == 302  # the request only records the wish
        job = ModelImportJob.objects.get(name=f"x{n}")
        assert import_model.apply(args=[job.pk]).get() == "refused"
        job.refresh_from_db()
        messages.add(job.error.replace(typed, "<path>"))
    assert len(messages) == 1, messages
    assert "other-model" not in messages.pop()
    assert not ModelEntry.objects.exists()  # refused imports free their names
    response = res_client.post(
        reverse("catalog:models"), {"name": "tiny", "path": str(layout["model"])}
    )
    assert response.status_code == 302
    import_model.apply(args=[ModelImportJob.objects.get(name="tiny").pk])
    assert ModelEntry.objects.get(name="tiny").architecture == "LlamaForCausalLM"


@pytest.mark.django_db
def test_register_command_is_confined_unless_trust_path_is_given(settings, model_store, layout):  # type: ignore[no-untyped-def]
    settings.MODEL_IMPORT_ROOTS = [str(layout["root"])]
    with pytest.raises(CommandError, match="MODEL_IMPORT_ROOTS") as err:
        call_command("register_model", "other", str(layout["outside_model"]))
    assert "config.json" not in str(err.value)
    out = StringIO()
    call_command(
        "register_model", "other", str(layout["outside_model"]), "--trust-path", stdout=out
    )
    assert "registered 'other'" in out.getvalue()
    call_command("register_model", "tiny", str(layout["model"]), stdout=out)
    assert ModelEntry.objects.count() == 2
    shutil.rmtree(layout["store"], ignore_errors=True)


@pytest.mark.django_db
def test_a_refused_import_job_is_explained_in_the_readers_language(
    res_client, settings, model_store, layout
):  # type: ignore[no-untyped-def]
    """The worker has no reader: the job keeps the refusal's message id and params, and the
    models page translates them for whoever reads it."""
    from sbs.catalog.models import ModelImportJob
    from workers.tasks import import_model

    root = layout["root"]
    settings.MODEL_IMPORT_ROOTS = [str(root)]
    (layout["model"] / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    for name, typed in (("evil", layout["model"]), ("absent", root / "absent")):
        response = res_client.post(reverse("catalog:models"), {"name": name, "path": str(typed)})
        assert response.status_code == 302
        job = ModelImportJob.objects.get(name=name)
        assert import_model.apply(args=[job.pk]).get() == "refused"
    job = ModelImportJob.objects.get(name="evil")
    assert job.status == "failed"
    assert "pytorch_model.bin: pickled weights (.bin)" in job.error  # as raised, in English
    assert job.refusal["params"]["reason"]["params"] == {"suffix": ".bin"}

    page = reverse("catalog:models")
    russian = res_client.get(page, headers={"accept-language": "ru"}).content.decode()
    assert "pytorch_model.bin: веса в формате pickle (.bin)" in russian
    assert "в папках, из которых можно регистрировать модели" in russian
    assert "pickled weights" not in russian and "no model folder" not in russian
    english = res_client.get(page, headers={"accept-language": "en"}).content.decode()
    assert "pytorch_model.bin: pickled weights (.bin)" in english
    assert "no model folder or file by this name can be read" in english
    assert "веса" not in english


@pytest.mark.django_db
def test_an_import_error_without_a_message_id_is_shown_as_stored(res_client, model_store):  # type: ignore[no-untyped-def]
    from sbs.catalog.models import ModelImportJob

    ModelImportJob.objects.create(name="a", server_path="/x", status="failed", error="Boom: 42")
    ModelImportJob.objects.create(
        name="b", server_path="/y", status="failed", error="as raised",
        refusal={"msgid": "%(missing)s", "params": {"other": 1}},
    )  # fmt: skip
    html = res_client.get(reverse("catalog:models"), headers={"accept-language": "ru"}).content
    assert "Boom: 42" in html.decode() and "as raised" in html.decode()
