"""Jobs that use Django without setting it up themselves, as a Django app's jobs usually do: the
worker sets Django up (role rq: rq_django_settings_module). Each run is recorded as
"<tag>@<revision>": which release's code ran it.
"""
import os
import time

from django.conf import settings

from counter.models import JobRun


def record(tag):
    JobRun.objects.create(tag="%s@%s" % (tag, settings.APP_REVISION[:12]))
    return tag


def record_when(tag, flag, limit=300):
    """A job that runs until a file appears (at most `limit` seconds): a deploy must let it finish
    (warm shutdown), not kill it. Recorded with the revision of the code that ran it."""
    end = time.time() + limit
    while not os.path.exists(flag) and time.time() < end:
        time.sleep(0.2)
    return record(tag)
