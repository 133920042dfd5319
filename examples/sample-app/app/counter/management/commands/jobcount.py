from django.core.management.base import BaseCommand

from counter.models import JobRun


class Command(BaseCommand):
    help = "Print how many times counter.jobs.record_job(TAG) has run (a bare number)."

    def add_arguments(self, parser):
        parser.add_argument("tag")

    def handle(self, *args, **options):
        self.stdout.write(str(JobRun.objects.filter(tag=options["tag"]).count()))
