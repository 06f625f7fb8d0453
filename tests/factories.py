"""Building blocks for tests: real rows made through the services, as a user would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model

from sbs.accounts.roles import make_researcher
from sbs.catalog import services as catalog_services
from sbs.catalog.models import ModelEntry
from sbs.questions import services as question_services
from sbs.questions.models import QuestionSet
from sbs.studies import services
from sbs.studies.models import Answer, GenerationRun, Study

CATEGORIES = ["general_knowledge", "reasoning_over_text", "text_understanding", "instructions_creative"]  # fmt: skip


def researcher(username: str = "res", password: str = "pw-researcher-1") -> Any:
    user = get_user_model().objects.create_user(username=username, password=password)
    make_researcher(user)
    return user


def annotator(username: str, password: str = "pw-annotator-1") -> Any:
    return get_user_model().objects.create_user(username=username, password=password)


def question_set(n: int = 6, name: str = "qs") -> QuestionSet:
    lines = [
        json.dumps(
            {
                "id": f"q{i}",
                "question": f"Вопрос номер {i}: что такое {i}?",
                "category": CATEGORIES[i % 4],
            },
            ensure_ascii=False,
        )
        for i in range(n)
    ]
    return question_services.question_set_import(
        name=name, data="\n".join(lines).encode(), filename=f"{name}.jsonl"
    )


def model_entry(name: str, source: Path) -> ModelEntry:
    return catalog_services.model_register(name=name, source=source)


def draft_study(owner: Any, models: tuple[ModelEntry, ModelEntry], n: int = 6, **kw: Any) -> Study:
    return services.study_create(
        owner=owner,
        name="study",
        question_set=question_set(n),
        model_a=models[0],
        model_b=models[1],
        generation={"max_new_tokens": 8, "batch_size": 4},
        **kw,
    )


def open_study_with_answers(
    owner: Any, models: tuple[ModelEntry, ModelEntry], annotators: list[Any], n: int = 6, **kw: Any
) -> Study:
    """A study whose answers are written directly (no generation), then opened normally."""
    study = draft_study(owner, models, n, **kw)
    study.annotators.add(*annotators)
    for label, model in zip(("альфа", "бета"), models, strict=True):
        run = GenerationRun.objects.create(
            study=study, model=model, status=GenerationRun.Status.DONE, total_count=n, done_count=n
        )
        Answer.objects.bulk_create(
            Answer(
                run=run,
                question=q,
                text=f"Ответ «{label}» на вопрос {q.external_id}:\n\n- пункт\n- `код`",
                prompt_tokens=10,
                new_tokens=5 if label == "альфа" else 8,
                seconds=0.5,
                stop_reason="eos",
            )
            for q in study.question_set.questions.all()
        )
    Study.objects.filter(pk=study.pk).update(status=Study.Status.GENERATING)
    assert services.study_open_if_ready(study_id=study.pk)
    study.refresh_from_db()
    return study
