"""Django settings, read from the environment.

Defaults run on a laptop (SQLite, a filesystem broker, DEBUG on). Production differs only
by environment variables: DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL,
MODEL_STORE. A bad value fails loudly at start-up.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from sbs import assets

BASE_DIR = Path(__file__).resolve().parent.parent
# var/ beside manage.py in a checkout; in the working folder for an installed package.
_CHECKOUT = (BASE_DIR / "manage.py").exists()
VAR_DIR = Path(os.environ.get("SBS_VAR_DIR", (BASE_DIR if _CHECKOUT else Path.cwd()) / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0/true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-change-me-" + "x" * 32
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "sbs.core",  # before staticfiles: its runserver (TCP_NODELAY) takes precedence
    "django.contrib.staticfiles",
    "sbs.accounts",
    "sbs.catalog",
    "sbs.questions",
    "sbs.studies",
    "sbs.voting",
    "sbs.analysis",
    "sbs.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the WSGI app: compressed variants, caching headers, no
    # Django view per file; the demo and a plain gunicorn deployment need nothing else.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "sbs.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sbs.urls"
WSGI_APPLICATION = "sbs.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [assets.TEMPLATES],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "sbs.accounts.context.roles",
            ]
        },
    }
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # A worker that hangs inside a transaction (SIGSTOP, a stalled host) must not hold
        # its row locks forever: the server ends such a session, and the job's lease
        # expires so that another worker takes it over.
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
            "-c idle_in_transaction_session_timeout=60000"
        )
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "sbs.sqlite3"),
            "CONN_MAX_AGE": 600,  # opening SQLite and running the PRAGMAs costs per request
            # WAL + a busy timeout + IMMEDIATE write transactions: concurrent voters queue
            # for the write lock instead of failing with "database is locked".
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                ),
            },
            # A file (a worker subprocess opens it too), one per test process.
            "TEST": {"NAME": str(VAR_DIR / f"test-sbs-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [assets.LOCALE]
USE_I18N = True
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [assets.STATIC]
STATIC_ROOT = VAR_DIR / "staticfiles"
# whitenoise serves the app's static folders as they are (no collectstatic needed) and, after
# `manage.py collectstatic`, STATIC_ROOT with its compressed copies.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = VAR_DIR / "uploads"
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# Model files: a path every worker host can read (a shared mount in a multi-host setup).
MODEL_STORE = Path(os.environ.get("MODEL_STORE", VAR_DIR / "models"))
MODEL_CACHE = Path(os.environ.get("MODEL_CACHE", MODEL_STORE / ".cache"))
MODEL_ARCHIVE_MAX_BYTES = env_int("MODEL_ARCHIVE_MAX_BYTES", 64 * 1024**3)
ADAPTATION_KEEP_WORK = env_bool("ADAPTATION_KEEP_WORK", False)  # keep checkpoints after a job

# Limits on what people send, and where they may register models from (issue 8).
# MODEL_IMPORT_ROOTS: comma-separated absolute folders a researcher may register a model from
# by server path; empty refuses registering by server path (uploads still work). A request
# whose body exceeds MAX_UPLOAD_BYTES plus DATA_UPLOAD_MAX_MEMORY_SIZE is cut off with a 400 by
# the first upload handler, before it fills the disk; the forms name the limit below that.
MODEL_IMPORT_ROOTS = [
    r.strip() for r in os.environ.get("MODEL_IMPORT_ROOTS", "").split(",") if r.strip()
]
for _root in MODEL_IMPORT_ROOTS:
    if not os.path.isabs(_root):
        raise ImproperlyConfigured(f"MODEL_IMPORT_ROOTS must list absolute folders, got {_root!r}")
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 8 * 1024**3)
QUESTION_FILE_MAX_BYTES = env_int("QUESTION_FILE_MAX_BYTES", 20 * 1024**2)
if MAX_UPLOAD_BYTES <= 0 or QUESTION_FILE_MAX_BYTES <= 0:
    raise ImproperlyConfigured("MAX_UPLOAD_BYTES and QUESTION_FILE_MAX_BYTES must be positive")
FILE_UPLOAD_HANDLERS = [
    "sbs.core.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Celery. REDIS_URL switches the broker to Redis; without it a filesystem broker under
# var/ serves the demo on one machine, still with a real worker process.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 6 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 6 * 3600 - 300)
BROKER_VISIBILITY_TIMEOUT = env_int("BROKER_VISIBILITY_TIMEOUT", 7 * 3600)
GENERATION_MAX_ATTEMPTS = env_int("GENERATION_MAX_ATTEMPTS", 3)
# A worker holds a job through a lease its heartbeat renews every quarter of this; a job
# whose lease expired (hung or dead worker) is handed to another worker by the reaper.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 120)
# CPU threads per worker process for torch (0: torch's default). On a shared or small CPU,
# 1 thread per process avoids oversubscription; scale with more worker processes instead.
TORCH_NUM_THREADS = env_int("TORCH_NUM_THREADS", 0)
if BROKER_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "BROKER_VISIBILITY_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT, or Redis redelivers "
        "a task that is still running"
    )
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # A task whose worker died is redelivered once its visibility timeout has passed;
    # scan for such tasks every 10 s (kombu's default scans every ~100 s).
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
        "unacked_restore_throttle": 1,
    }
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

# Security. The production values switch on with DEBUG off.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

# A cache shared by all web processes (login throttling counts failures in it). With one,
# sessions are read from it (written through to the database): a page costs no session query.
# Without one, each process would keep its own copy and a logout in one process would not
# reach the others, so sessions stay in the database alone.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# The session's user comes with its role in one query (sbs.accounts.backends).
AUTHENTICATION_BACKENDS = ["sbs.accounts.backends.RoleAwareBackend"]
# Behind N reverse proxies, the client address is the N-th from the right of X-Forwarded-For.
LOGIN_THROTTLE_PROXY_HOPS = env_int("LOGIN_THROTTLE_PROXY_HOPS", 0)

# Invites (sbs.accounts.services): an invite link works for this many days after it was
# issued; a researcher can issue a new one from the study page.
INVITE_MAX_AGE = env_int("INVITE_MAX_AGE", 14)
if INVITE_MAX_AGE < 1:
    raise ImproperlyConfigured(f"INVITE_MAX_AGE must be at least 1 (days), got {INVITE_MAX_AGE}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
