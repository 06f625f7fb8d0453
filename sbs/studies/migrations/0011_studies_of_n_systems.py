"""Studies of N systems: a study's third and later systems, and the two systems of each pair.

Every existing pair compared its study's model A and model B: they become its
``model_x`` and ``model_y``.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import F, OuterRef, Q, Subquery


def pairs_of_two(apps, schema_editor):  # type: ignore[no-untyped-def]
    Pair = apps.get_model("studies", "Pair")
    Study = apps.get_model("studies", "Study")
    study = Study.objects.filter(pk=OuterRef("study_id"))
    Pair.objects.update(
        model_x=Subquery(study.values("model_a")[:1]),
        model_y=Subquery(study.values("model_b")[:1]),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_ensembles"),
        ("studies", "0010_answer_timings_optional"),
    ]

    operations = [
        migrations.AddField(
            model_name="study",
            name="pair_budget",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="pairs to judge (a question and two systems each); empty: every pair "
                "of systems on every question",
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="study",
            constraint=models.CheckConstraint(
                condition=Q(pair_budget__isnull=True) | Q(pair_budget__gte=1),
                name="study_pair_budget_positive",
            ),
        ),
        migrations.CreateModel(
            name="StudySystem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "position",
                    models.PositiveSmallIntegerField(help_text="2 for the third system, and so on"),
                ),
                (
                    "model",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="catalog.modelentry",
                    ),
                ),
                (
                    "study",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="more_systems",
                        to="studies.study",
                    ),
                ),
            ],
            options={
                "ordering": ["study", "position"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("study", "model"), name="system_unique_study_model"
                    ),
                    models.UniqueConstraint(
                        fields=("study", "position"), name="system_unique_study_position"
                    ),
                    models.CheckConstraint(
                        condition=Q(position__gte=2) & Q(position__lt=12),
                        name="system_position_range",
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="pair",
            name="model_x",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="catalog.modelentry",
            ),
        ),
        migrations.AddField(
            model_name="pair",
            name="model_y",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="catalog.modelentry",
            ),
        ),
        migrations.RunPython(pairs_of_two, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="pair",
            name="model_x",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="catalog.modelentry",
            ),
        ),
        migrations.AlterField(
            model_name="pair",
            name="model_y",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="catalog.modelentry",
            ),
        ),
        migrations.RemoveConstraint(model_name="pair", name="pair_unique_study_question"),
        migrations.AddConstraint(
            model_name="pair",
            constraint=models.UniqueConstraint(
                fields=("study", "question", "model_x", "model_y"),
                name="pair_unique_study_question_systems",
            ),
        ),
        migrations.AddConstraint(
            model_name="pair",
            constraint=models.CheckConstraint(
                condition=~Q(model_x=F("model_y")), name="pair_two_distinct_systems"
            ),
        ),
        migrations.AlterModelOptions(
            name="pair",
            options={"ordering": ["study", "question__position", "id"]},
        ),
    ]
