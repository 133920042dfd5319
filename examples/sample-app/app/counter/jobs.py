"""Jobs run by an rq worker: `rq worker -u "$REDIS_URL" default` started in the app dir.

The worker imports this module by name (counter.jobs.record_job), outside manage.py,
so Django is set up here.
"""
import os

import django
from django.apps import apps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample.settings")
if not apps.ready:
    django.setup()

from django.db import connections  # noqa: E402

from counter.models import JobRun  # noqa: E402


def record_job(tag):
    """Write one JobRun row for tag; return how many runs that tag now has."""
    try:
        JobRun.objects.create(tag=tag)
        return JobRun.objects.filter(tag=tag).count()
    finally:
        connections.close_all()
