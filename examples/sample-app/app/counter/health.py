"""The health check behind /ping."""
from django.db import connection


def check():
    """Raise if the app cannot serve: here, if the database does not answer SELECT 1."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    if row is None or row[0] != 1:
        raise RuntimeError("database answered %r to SELECT 1" % (row,))
