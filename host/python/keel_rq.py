"""Installed by keel (role rq) in /usr/local/lib/keel/python: the rq worker class role rq starts
(`rq worker --worker-class keel_rq.Worker`). With DJANGO_SETTINGS_MODULE set (rq_django_settings_module),
it sets Django up once, before any job: a job can use the ORM without calling django.setup()
itself. The work horses rq forks for each job inherit it.
"""
import os

from rq import Worker as _Worker


class Worker(_Worker):
    def __init__(self, *args, **kwargs):
        if os.environ.get("DJANGO_SETTINGS_MODULE"):
            import django

            django.setup()
        super().__init__(*args, **kwargs)
