"""The health check behind /ping.

Branch v3-bad-health: the check always fails, so /ping answers 500 while / still works
and the migrations are fine. A deploy must notice through its health check and roll back.
"""
from django.db import connection


def check():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    raise RuntimeError("keel sample app v3-bad-health: health check fails on purpose")
