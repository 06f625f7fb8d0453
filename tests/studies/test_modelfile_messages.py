"""The model files' refusals reach the web pages in the reader's language: every message of
adaptation/modelfiles.py is a ``gettext_noop`` literal with a Russian translation, and the
params travel with it (through a job row, too)."""

from __future__ import annotations

import ast
import gettext
import pickle
import re
from pathlib import Path

import pytest
from django.utils import translation

from adaptation import modelfiles
from adaptation.modelfiles import Message, ModelFileError, ServerPathError
from sbs.catalog.messages import message_text, stored_text

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "adaptation" / "modelfiles.py"
#: Everything whose first argument is a message id.
TAKES_MSGID = {"Message", "ModelFileError", "ServerPathError", "_Refusal", "_ArchiveLimitError",
               "_GGUFParseError", "bad"}  # fmt: skip
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _literal_msgid(node: ast.expr) -> str | None:
    """The text of ``gettext_noop("…")``, or None when ``node`` is anything else."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "gettext_noop"
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _msgid_params(tree: ast.Module) -> tuple[list[str], list[str]]:
    """Every ``gettext_noop`` literal of the module, and the calls that break the rule: a
    message id that is neither such a literal nor the ``msgid`` parameter passed through."""
    msgids: list[str] = []
    problems: list[str] = []
    passthrough: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and "msgid" in {a.arg for a in fn.args.args}:
            passthrough |= {id(n) for n in ast.walk(fn) if isinstance(n, ast.Name)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id == "gettext_noop":
            msgid = _literal_msgid(node)
            if msgid is None:
                problems.append(f"line {node.lineno}: gettext_noop needs one string literal")
            else:
                msgids.append(msgid)
        elif node.func.id in TAKES_MSGID:
            first = node.args[0] if node.args else None
            if first is None:
                problems.append(f"line {node.lineno}: {node.func.id}() without a message")
                continue
            msgid = _literal_msgid(first)
            if msgid is None:
                if not (isinstance(first, ast.Name) and first.id == "msgid" and id(first) in passthrough):  # fmt: skip
                    problems.append(f"line {node.lineno}: {node.func.id}() with a computed message")  # fmt: skip
                continue
            params = node.args[1] if len(node.args) > 1 else None
            keys = (
                {k.value for k in params.keys if isinstance(k, ast.Constant)}
                if isinstance(params, ast.Dict)
                else None
            )
            wanted = set(PLACEHOLDER.findall(msgid))
            if params is None and wanted:
                problems.append(f"line {node.lineno}: {msgid!r} without its params")
            elif keys is not None and keys != wanted:
                problems.append(f"line {node.lineno}: {msgid!r} given params {sorted(keys)}")
    return msgids, problems


def test_every_refusal_passes_a_gettext_noop_literal_with_its_params():
    tree = ast.parse(MODULE.read_text(), str(MODULE))
    msgids, problems = _msgid_params(tree)
    assert problems == []
    raised = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and isinstance(node.exc.func, ast.Name)
        and node.exc.func.id in {*TAKES_MSGID, "_refused_file"}
    ]
    assert len(raised) >= 70, len(raised)  # the rule above is not checked on an empty module
    assert len(msgids) >= 90


def test_every_message_has_a_russian_translation_with_the_same_placeholders():
    msgids, _ = _msgid_params(ast.parse(MODULE.read_text()))
    catalogue = gettext.translation("django", localedir=ROOT / "locale", languages=["ru"])
    found = catalogue._catalog  # type: ignore[attr-defined]
    missing = [m for m in msgids if not found.get(m)]
    assert missing == [], "translate these in locale/ru (make messages, compile):\n" + "\n".join(missing)  # fmt: skip
    mismatched = [m for m in msgids if set(PLACEHOLDER.findall(m)) != set(PLACEHOLDER.findall(found[m]))]  # fmt: skip
    assert mismatched == []


def test_the_english_text_is_kept_and_the_russian_one_is_made_on_demand(tmp_path: Path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ModelFileError) as err:
        modelfiles.inspect_model_path(folder)
    exc = err.value
    assert str(exc) == exc.message.text()
    assert str(exc).startswith("pytorch_model.bin: pickled weights (.bin) can run arbitrary code")
    with translation.override("ru"):
        assert message_text(exc.message).startswith(
            "pytorch_model.bin: веса в формате pickle (.bin) при загрузке могут выполнить"
        )
    with translation.override("en"):
        assert message_text(exc.message) == str(exc)


def test_counts_follow_the_readers_digit_grouping():
    limit = Message(
        modelfiles.gettext_noop(
            "%(name)s: the model file takes %(size)s bytes, over the %(limit)s-byte limit"
        ),  # fmt: skip
        {"name": "m.gguf", "size": 12_345_678, "limit": 1_000_000},
    )
    assert limit.text() == "m.gguf: the model file takes 12,345,678 bytes, over the 1,000,000-byte limit"  # fmt: skip
    with translation.override("ru"):
        assert message_text(limit) == (
            "m.gguf: файл модели занимает 12\xa0345\xa0678 байт, больше предела в 1\xa0000\xa0000 байт"
        )


def test_a_stored_message_comes_back_whole_and_a_broken_one_falls_back():
    nested = modelfiles._refused_file(
        modelfiles._in_archive("tiny/x.pt", "a.zip"), modelfiles._forbidden_reason("x.pt")
    )
    data = nested.message.to_json()
    assert Message.from_json(data) == nested.message
    with translation.override("ru"):
        assert stored_text(data, "fallback").startswith("tiny/x.pt (в архиве a.zip): веса")
        assert stored_text({}, "as stored") == "as stored"
        assert stored_text({"params": {}}, "as stored") == "as stored"
        assert stored_text({"msgid": "%(a)s", "params": {"b": 1}}, "as stored") == "as stored"


def test_an_error_survives_pickling_with_its_message():
    exc = ServerPathError(modelfiles.gettext_noop("%(path)s: does not exist"), {"path": "/m"},
                          disabled=True)  # fmt: skip
    back = pickle.loads(pickle.dumps(exc))
    assert (back.msgid, back.params, back.disabled, str(back)) == (exc.msgid, {"path": "/m"}, True, "/m: does not exist")  # fmt: skip
