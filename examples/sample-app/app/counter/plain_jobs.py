"""Jobs that use Django without setting it up themselves, as a Django app's jobs usually do: the
worker sets Django up (role rq: rq_django_settings_module). Each run is recorded as
"<tag>@<revision>": which release's code ran it.
"""
import time

from django.conf import settings

from counter.models import JobRun


def record(tag):
    JobRun.objects.create(tag="%s@%s" % (tag, settings.APP_REVISION[:12]))
    return tag


def slow_record(tag, seconds):
    """A job that takes a while: a deploy must let it finish (warm shutdown), not kill it."""
    time.sleep(seconds)
    return record(tag)
