from django.db import models


class Hit(models.Model):
    """One row per request to `/`: the page shows how many there are."""

    created_at = models.DateTimeField(auto_now_add=True)
    # v4: which client asked (migration 0002_hit_user_agent, nullable: harmless on old rows).
    user_agent = models.CharField(max_length=200, null=True, blank=True)


class JobRun(models.Model):
    """One row per run of counter.jobs.record_job(tag), written by an rq worker."""

    tag = models.CharField(max_length=100, db_index=True)
    ran_at = models.DateTimeField(auto_now_add=True)
