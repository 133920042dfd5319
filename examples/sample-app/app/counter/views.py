import logging

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from counter import health
from counter.models import Hit

log = logging.getLogger(__name__)


@never_cache
def index(request):
    Hit.objects.create()
    context = {
        "version": settings.APP_VERSION,
        "revision": settings.APP_REVISION,
        "count": Hit.objects.count(),
    }
    return render(request, "counter/index.html", context)


@never_cache
def ping(request):
    try:
        health.check()
    except Exception as exc:  # any failure means unhealthy: say so with a 500
        log.exception("health check failed")
        return HttpResponse("unhealthy: %s\n" % exc, status=500, content_type="text/plain")
    return HttpResponse("pong", content_type="text/plain")
