"""Settings for the keel sample app, all taken from the environment.

SECRET_KEY    required unless DEBUG is on
DATABASE_URL  postgresql://user:pass@host:port/db (or postgres://...),
              postgresql://user@/db?host=/var/run/postgresql for a Unix socket,
              sqlite:///abs/path.sqlite3 for quick local checks.
              Unset: no database (collectstatic, compilemessages and check still work).
REDIS_URL     redis://host:port/0, used by `manage.py enqueue` (optional)
STATIC_ROOT   where collectstatic copies to (default: <app>/staticfiles)
ALLOWED_HOSTS comma-separated (default: *)
DEBUG         1/true/yes/on to enable (default: off)
"""
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name, default=False):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def parse_database_url(url):
    """Turn a DATABASE_URL into a Django DATABASES entry (no dj-database-url on Debian)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgres", "postgresql", "pgsql"):
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL has no database name: %r" % url)
        # A host given in the query (?host=/var/run/postgresql) wins: that is how
        # a Unix socket directory is written, since it cannot go in the netloc.
        host = query.pop("host", None) or unquote(parts.hostname or "")
        port = query.pop("port", None) or (str(parts.port) if parts.port else "")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": host,
            "PORT": port,
            # The remaining query parameters (sslmode=..., connect_timeout=...) go to libpq.
            "OPTIONS": query,
        }
    if scheme == "sqlite":
        # sqlite:///abs/path and sqlite:////abs/path both mean /abs/path (absolute paths only);
        # sqlite:///:memory: is an in-memory database.
        path = unquote(parts.path)
        if path.startswith("//"):
            path = path[1:]
        if path in ("", "/", "/:memory:"):
            path = ":memory:"
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    raise ImproperlyConfigured("DATABASE_URL scheme %r is not supported" % parts.scheme)


DEBUG = env_flag("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set (or DEBUG=1 for local runs)")
    SECRET_KEY = "insecure-local-debug-key"

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "*").split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "counter",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "sample.urls"
WSGI_APPLICATION = "sample.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.static",
            ],
        },
    },
]

_database_url = os.environ.get("DATABASE_URL", "").strip()
# Empty DATABASES means Django's dummy backend: fine for collectstatic/compilemessages/check,
# and any query fails loudly instead of silently writing a local file.
DATABASES = {"default": parse_database_url(_database_url)} if _database_url else {}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "").strip()

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_L10N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT", "").strip() or str(BASE_DIR / "staticfiles")

# The app's version (VERSION file) and git sha (REVISION file, written by the deploy),
# read once at startup.
def _read_first_line(path, default):
    try:
        return path.read_text(encoding="utf-8").strip().splitlines()[0].strip() or default
    except (OSError, IndexError):
        return default


APP_VERSION = _read_first_line(BASE_DIR / "VERSION", "unknown")
APP_REVISION = _read_first_line(BASE_DIR / "REVISION", "unknown")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"},
    },
    "root": {"handlers": ["stderr"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers would mail admins / print only in DEBUG: send all to stderr.
        "django": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # `rq worker` gives this logger a handler of its own; replace it (Django sets up
        # logging again in the job's work horse) rather than print each line twice.
        "rq.worker": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
