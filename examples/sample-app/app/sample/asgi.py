"""ASGI entry point of the keel sample app, for uvicorn (seed 001 serves its app with it)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample.settings")

application = get_asgi_application()
