# The report cache row becomes a job of the one lifecycle (sbs.core.models.Job): it gains
# the lease, the fencing token, the attempts and the progress of every other job. Existing
# rows are kept and mapped: a row that was started has had one attempt (fence 1), and a
# row still running holds a lease until the old rule would have presumed it lost (started
# 10 minutes ago), so the reaper hands it on no earlier than the old code did.

from datetime import timedelta

from django.db import migrations, models

OLD_STALE_AFTER = timedelta(minutes=10)


def map_old_rows(apps, schema_editor):
    ReportCache = apps.get_model("analysis", "ReportCache")
    started = ReportCache.objects.filter(started_at__isnull=False)
    started.update(attempts=1, fence=1, heartbeat_at=models.F("started_at"), device="cpu")
    started.filter(status="running").update(
        lease_expires_at=models.F("started_at") + OLD_STALE_AFTER
    )
    ReportCache.objects.filter(status="done").update(progress=1.0)


class Migration(migrations.Migration):
    dependencies = [
        ("analysis", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="reportcache",
            name="attempts",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="reportcache",
            name="device",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="reportcache",
            name="fence",
            field=models.PositiveBigIntegerField(
                default=0, help_text="fencing token: grows by one at every claim"
            ),
        ),
        migrations.AddField(
            model_name="reportcache",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="reportcache",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="reportcache",
            name="message",
            field=models.CharField(blank=True, default="", max_length=300),
        ),
        migrations.AddField(
            model_name="reportcache",
            name="progress",
            field=models.FloatField(default=0.0),
        ),
        migrations.AddField(
            model_name="reportcache",
            name="worker",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.RunPython(map_old_rows, migrations.RunPython.noop),
    ]
