from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

QUEUE = "default"


class Command(BaseCommand):
    help = "Enqueue counter.jobs.record_job(TAG) on the rq queue 'default' at REDIS_URL."

    def add_arguments(self, parser):
        parser.add_argument("tag")

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            raise CommandError("REDIS_URL is not set")
        from redis import Redis
        from rq import Queue

        queue = Queue(QUEUE, connection=Redis.from_url(settings.REDIS_URL))
        job = queue.enqueue("counter.jobs.record_job", options["tag"])
        self.stdout.write("enqueued %s on %s" % (job.id, QUEUE))
