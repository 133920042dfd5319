from django.db import models


class Hit(models.Model):
    """One row per request to `/`: the page shows how many there are."""

    created_at = models.DateTimeField(auto_now_add=True)


class JobRun(models.Model):
    """One row per run of counter.jobs.record_job(tag), written by an rq worker."""

    tag = models.CharField(max_length=100, db_index=True)
    ran_at = models.DateTimeField(auto_now_add=True)
