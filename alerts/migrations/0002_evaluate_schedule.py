"""Schedule alerts.tasks.alerts_wake every minute: it keeps the `count` rules' chain alive."""

from django.db import migrations

FUNC = "alerts.tasks.alerts_wake"


def _create(apps, schema_editor) -> None:  # noqa: ANN001
    schedule = apps.get_model("django_q", "Schedule")
    schedule.objects.update_or_create(
        name="alerts_wake",
        defaults={"func": FUNC, "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def _delete(apps, schema_editor) -> None:  # noqa: ANN001
    apps.get_model("django_q", "Schedule").objects.filter(name="alerts_wake").delete()


class Migration(migrations.Migration):
    """Adds the schedule row."""

    dependencies = [
        ("alerts", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(_create, _delete)]
