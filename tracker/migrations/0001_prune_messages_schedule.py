"""Schedule tracker.tasks.messages_prune_daily: drop the months past TRACKER_RETENTION_DAYS."""

from django.db import migrations

FUNC = "tracker.tasks.messages_prune_daily"


def _create(apps, schema_editor) -> None:  # noqa: ANN001
    schedule = apps.get_model("django_q", "Schedule")
    schedule.objects.update_or_create(
        name="prune_messages",
        defaults={"func": FUNC, "schedule_type": "D", "repeats": -1},
    )


def _delete(apps, schema_editor) -> None:  # noqa: ANN001
    apps.get_model("django_q", "Schedule").objects.filter(name="prune_messages").delete()


class Migration(migrations.Migration):
    """Adds the schedule row."""

    dependencies = [("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]

    operations = [migrations.RunPython(_create, _delete)]
