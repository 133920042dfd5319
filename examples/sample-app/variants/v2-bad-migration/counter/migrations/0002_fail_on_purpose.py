# Branch v2-bad-migration: this migration fails on PostgreSQL, on purpose, so that a
# deploy has to stop (and roll back) when `manage.py migrate` exits non-zero.
# It adds a column first, so a test can also check that nothing of it stays behind
# (PostgreSQL runs each migration in one transaction).
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("counter", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL("ALTER TABLE counter_hit ADD COLUMN broken_note text"),
        migrations.RunSQL(
            "DO $$ BEGIN RAISE EXCEPTION "
            "'keel sample app v2-bad-migration: migration 0002 fails on purpose'; END $$"
        ),
    ]
