"""trialsite settings: one module, read from the environment.

Production differs from development by environment only, never by code path. See docs/operations.md for every
variable. With no environment set (``make run``) the service uses SQLite and Celery's filesystem transport.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from trialsite.beat import BEAT_SCHEDULE, TASK_ROUTES
from trialsite.env import env_bool, env_choice, env_int, env_list, env_str, env_timezone

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TRIALSITE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (or set SECRET_KEY_FILE)")
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"  # noqa: S105
# Keys the pseudonymous staff ids of the exports (therapist dyads, raters). Its own variable so that rotating
# SECRET_KEY (sessions, signed links) does not change the ids an analysis already clusters on; it defaults to
# SECRET_KEY for a deployment that never rotates it.
EXPORT_PSEUDONYM_KEY = env_str("EXPORT_PSEUDONYM_KEY") or SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "trialsite",
    "audit",
    "participants",
    "scheduling",
    "assessments",
    "safety",
    "notifications",
    "exports",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "trialsite.middleware.SessionLifetimeMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "trialsite.middleware.NoStoreMiddleware",
    # Last, so its 404 still gets every security header on the way out.
    "trialsite.middleware.NulInPathMiddleware",
]

if not DEBUG:
    # Static files from the application server in production; in development runserver serves them from the apps.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "trialsite.urls"
WSGI_APPLICATION = "trialsite.wsgi.application"
ASGI_APPLICATION = "trialsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.staff_navigation",
            ],
        },
    },
]

# Database: SQLite by default so a newcomer needs no server; PostgreSQL through DATABASE_URL for tests and
# production (the append-only audit trigger and row locks for id allocation need PostgreSQL).
_default_db = f"sqlite:///{VAR_DIR / 'trialsite.sqlite3'}"
try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", _default_db), conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL ({exc}); e.g. postgres://user@host:5432/db"
    ) from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The embedded demo runs a web server and a worker on one file: writers take the lock when their transaction
    # begins (IMMEDIATE) and wait for it, and WAL lets readers go on meanwhile.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The worklists' covering indexes carry extra columns (INCLUDE) on PostgreSQL; SQLite builds them without those,
    # which changes speed only. Said once here rather than on every command of the demo.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
# DATABASE_URL may point at PgBouncer in transaction mode (docs/operations.md, "Past one machine"). Then one
# session's state must not outlive its transaction: Django's .iterator() would otherwise declare a cursor WITH HOLD
# that the next transaction, on another server connection, cannot see. Prepared statements are off already (Django
# sets psycopg's prepare_threshold to None), and the code's advisory locks are transaction-scoped (pg_advisory_xact_lock).
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DATABASE_TRANSACTION_POOLING", False)
# A streaming read replica for the statistician's reads (exports, the analysis API): trialsite/replica.py decides
# which reads go there. Unset (the default, the tests, the demo): there is one database and everything reads it.
_replica_url = env_str("DATABASE_REPLICA_URL")
if _replica_url:
    try:
        DATABASES["replica"] = dj_database_url.parse(
            _replica_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
        )
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"DATABASE_REPLICA_URL is not a database URL ({exc}); e.g. postgres://user@replica:5432/db"
        ) from exc
    if DATABASES["replica"]["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must name the same kind of database as DATABASE_URL")
    # Tests never build a second database for it: the alias reads the test database itself.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["trialsite.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Instants are stored in UTC; local dates (windows, "today", quiet hours) are computed in the participant's or
# the site's own zone, never in the server's.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_SITE_TIME_ZONE = env_timezone("DEFAULT_SITE_TIME_ZONE", "America/Los_Angeles")

# Staff sign in to the dashboard with a username and password, staff flag or not (dashboard.forms.StaffLoginForm).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard-home"
LOGOUT_REDIRECT_URL = "login"

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security. Secure defaults whenever DEBUG is off; development relaxes only what plain HTTP needs.
SESSION_INACTIVITY_SECONDS = env_int("SESSION_INACTIVITY_SECONDS", 30 * 60, minimum=60)
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_SECONDS", 12 * 60 * 60, minimum=60)
SESSION_COOKIE_AGE = SESSION_INACTIVITY_SECONDS
SESSION_SAVE_EVERY_REQUEST = True  # sliding inactivity timeout
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# same-origin, not no-referrer: under no-referrer browsers post forms with "Origin: null", which CSRF protection
# rightly refuses, and same-origin still sends nothing to another site. The participant token URL (/l/<token>/)
# sends no-referrer itself (assessments.views.link_open), so its token never travels in a Referer.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Redis, Celery. Reminders live in PostgreSQL (an outbox); the broker only carries ids, so a broker outage
# delays delivery but loses nothing.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
_broker_dir = VAR_DIR / "celery-broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker is two folders; they must exist before the first message is published.
    for _folder in ("queue", "processed"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE
CELERY_TASK_ROUTES = TASK_ROUTES

if REDIS_URL:
    # Fail fast when Redis is down (the participant link limit then counts in-process: assessments.links).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Questionnaires and safety.
SAFETY_ALERT_ESCALATE_AFTER_MINUTES = env_int("SAFETY_ALERT_ESCALATE_AFTER_MINUTES", 60, minimum=1)
# Adverse events: a serious event or an AESI left unreviewed this long escalates to the study's medical monitor.
SAFETY_AE_REPORTING_HOURS = env_int("SAFETY_AE_REPORTING_HOURS", 24, minimum=1)
# A folder of a site's own AESI lists (<STUDY CODE>.json), checked at start-up; empty: the shipped lists only.
SAFETY_AESI_DIR = env_str("SAFETY_AESI_DIR", "")
# Wrong participant-link tokens from one address within the window before it is slowed down (429).
ASSESSMENT_LINK_FAILURE_LIMIT = env_int("ASSESSMENT_LINK_FAILURE_LIMIT", 20, minimum=1)
ASSESSMENT_LINK_FAILURE_WINDOW_SECONDS = env_int("ASSESSMENT_LINK_FAILURE_WINDOW_SECONDS", 900, minimum=1)

# --- The client address behind a proxy (the wrong-token limit counts per address; docs/security.md, "Participant
# links"). Empty (the default): REMOTE_ADDR. Otherwise the header the deployment's own proxy sets, as a request.META
# name (HTTP_X_FORWARDED_FOR) or as the header's name (X-Forwarded-For); TRUSTED_PROXY_COUNT is how many proxies of
# ours append to it, and the client is that many entries from the right (what the client wrote itself is never read).
_proxy_header = env_str("TRUSTED_PROXY_HEADER", "").strip().upper().replace("-", "_")
if _proxy_header and not _proxy_header.startswith("HTTP_") and _proxy_header != "REMOTE_ADDR":
    _proxy_header = f"HTTP_{_proxy_header}"
TRUSTED_PROXY_HEADER = _proxy_header
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1, minimum=1)

# --- Audit trail (docs/security.md, "The audit trail"). AUDIT_KEY (or AUDIT_KEY_FILE) keys the hash chain and signs
# the checkpoints; it is never stored in the database, so whoever can write to the database cannot forge the chain.
# Required when DEBUG is off (at least 32 characters). With DEBUG on (demo, tests) a development key is derived from
# SECRET_KEY so `make run` needs nothing. Keep the key for the life of the deployment (docs/operations.md, "Audit key").
AUDIT_KEY = env_str("AUDIT_KEY") or ""
if not AUDIT_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("AUDIT_KEY is required when DEBUG is off (or set AUDIT_KEY_FILE)")
    AUDIT_KEY = f"development audit key derived from SECRET_KEY {SECRET_KEY}"
elif not DEBUG and len(AUDIT_KEY) < 32:
    raise ImproperlyConfigured("AUDIT_KEY must be at least 32 characters (e.g. 64 random hex digits)")
# Signed checkpoints of the chain's head (one JSON line each, appended): a folder outside the database, ideally on
# another machine or an append-only mount. Beat writes one every 10 minutes (trialsite/beat.py).
AUDIT_CHECKPOINT_DIR = Path(env_str("AUDIT_CHECKPOINT_DIR", str(VAR_DIR / "audit-checkpoints")))

# --- Email. EMAIL_URL: smtp://user:password@host:port (smtp+tls:// for STARTTLS, smtps:// for implicit TLS),
# console://, locmem://, or file:///absolute/folder (one file per message). With DEBUG on and no EMAIL_URL (the
# embedded demo), mail is written as files under var/mail/, where it can be read.
EMAIL_URL = env_str("EMAIL_URL", f"file://{VAR_DIR / 'mail'}" if DEBUG else "smtp://127.0.0.1:25")
_email = urlsplit(EMAIL_URL)
_EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "smtp+tls": "django.core.mail.backends.smtp.EmailBackend",
    "smtps": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
}
if _email.scheme not in _EMAIL_BACKENDS:
    raise ImproperlyConfigured(
        f"EMAIL_URL scheme {_email.scheme!r} is not accepted; accepted: {', '.join(_EMAIL_BACKENDS)}"
    )
EMAIL_BACKEND = _EMAIL_BACKENDS[_email.scheme]
if _email.scheme == "file":
    if not _email.path.startswith("/"):
        raise ImproperlyConfigured(
            f"EMAIL_URL {EMAIL_URL!r}: a file:// URL needs an absolute folder, e.g. file:///srv/mail"
        )
    EMAIL_FILE_PATH = unquote(_email.path)
EMAIL_HOST = _email.hostname or "127.0.0.1"
EMAIL_PORT = _email.port or (465 if _email.scheme == "smtps" else 25)
EMAIL_HOST_USER = unquote(_email.username or "")
EMAIL_HOST_PASSWORD = unquote(_email.password or "")
EMAIL_USE_TLS = _email.scheme == "smtp+tls"
EMAIL_USE_SSL = _email.scheme == "smtps"
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "trialsite <no-reply@trialsite.invalid>")

# --- SMS and reminders (notifications). SMS_URL: console://, locmem://, or twilio://SID:TOKEN@host[:port]?from=+1555...
# (twilio+http:// for a plain-HTTP test server). See docs/operations.md, "Reminders".
SMS_URL = env_str("SMS_URL", "console://")
if urlsplit(SMS_URL).scheme not in ("console", "locmem", "twilio", "twilio+http"):
    raise ImproperlyConfigured(
        f"SMS_URL scheme {urlsplit(SMS_URL).scheme!r} is not accepted; accepted: console, locmem, twilio, twilio+http"
    )
NOTIFICATIONS_MAX_ATTEMPTS = env_int("NOTIFICATIONS_MAX_ATTEMPTS", 5, minimum=1)
NOTIFICATIONS_RETRY_BACKOFF_SECONDS = env_int("NOTIFICATIONS_RETRY_BACKOFF_SECONDS", 60, minimum=1)
NOTIFICATIONS_RETRY_BACKOFF_MAX_SECONDS = env_int("NOTIFICATIONS_RETRY_BACKOFF_MAX_SECONDS", 3600, minimum=1)
# A claim older than this is taken back by the dispatcher (its worker died or its message was lost with Redis).
NOTIFICATIONS_CLAIM_TIMEOUT_SECONDS = env_int("NOTIFICATIONS_CLAIM_TIMEOUT_SECONDS", 300, minimum=5)
NOTIFICATIONS_DISPATCH_BATCH = env_int("NOTIFICATIONS_DISPATCH_BATCH", 1000, minimum=1)
# Rows per send task: one task and one SMTP connection serve this many messages.
NOTIFICATIONS_SEND_BATCH = env_int("NOTIFICATIONS_SEND_BATCH", 20, minimum=1)
# The reminder safety net (notifications.reconcile_all) stops starting work after this many seconds, well inside the
# task's soft time limit, and goes on from there next run; it compares planner inputs this many participants at a time.
NOTIFICATIONS_RECONCILE_BUDGET_SECONDS = env_int("NOTIFICATIONS_RECONCILE_BUDGET_SECONDS", 60, minimum=1)
NOTIFICATIONS_RECONCILE_BATCH = env_int("NOTIFICATIONS_RECONCILE_BATCH", 500, minimum=1)
# Publishing fails fast when the broker is down: web requests enqueue on commit and must answer within a second; the
# work is not lost, because the outbox row (or the periodic reconcile) waits in PostgreSQL until the broker is back.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
if not CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS.setdefault("socket_connect_timeout", 1.0)

# --- REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "accounts.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON and forms with a depth and a text-length limit (trialsite/parsers.py): a 400, never a 500.
    "DEFAULT_PARSER_CLASSES": [
        "trialsite.parsers.JSONParser",
        "trialsite.parsers.FormParser",
        "trialsite.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "trialsite.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "trialsite.schema.AutoSchema",
    "EXCEPTION_HANDLER": "trialsite.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"link": "60/min"},
}
# Input and role limits (docs/security.md): clinical dates lie on or after this day for a study with no start date of
# its own; each user creates at most this many data freezes per UTC day (a 429 beyond).
CLINICAL_DATES_FROM = "2000-01-01"
EXPORT_FREEZES_PER_DAY = env_int("EXPORT_FREEZES_PER_DAY", 5, minimum=1)
# Request-body limits of the API: no request nests deeper, and no field holds more text (a free-text note, a reason,
# an instrument text pack's item wording all stay far below).
API_MAX_JSON_DEPTH = 32
API_MAX_TEXT_LENGTH = 20_000
SPECTACULAR_SETTINGS = {
    "TITLE": "trialsite API",
    "DESCRIPTION": "Participant tracking for clinical trials. Version 1.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI is served from this server (no CDN), so the page works offline and under a strict CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for the five-level causality scale, whichever field (site relatedness, investigator causality) uses it.
    "ENUM_NAME_OVERRIDES": {"RelatednessEnum": "safety.models.Relatedness"},
}

# --- Staff accounts (docs/security.md, "Staff accounts"): login lockout, the TOTP second factor, API tokens, feeds.
INSTALLED_APPS += ["axes", "django_otp", "django_otp.plugins.otp_totp", "accounts"]
_auth_middleware = MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
MIDDLEWARE[_auth_middleware + 1 : _auth_middleware + 1] = [
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.SecondFactorMiddleware",
    # Turns a locked-out sign-in into the "try again later" page.
    "axes.middleware.AxesMiddleware",
]
# The lockout backend first: it refuses a locked-out account before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# LOGIN_FAILURE_LIMIT wrong passwords in a row are allowed; the next wrong one (the 6th with the default 5) locks the
# account for LOGIN_LOCKOUT_MINUTES, and while locked even the right password is refused. Counted per user name, not per address, so a proxy
# in front of everybody locks nobody else out; attempts while locked do not extend the lock.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 30, minimum=1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT + 1
AXES_COOLOFF_TIME = "accounts.lockout.cool_off"
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # sign-ins are in the audit trail already
AXES_ENABLE_ADMIN = False  # unlock with `manage.py axes_reset_username <name>`
AXES_LOCKOUT_CALLABLE = "dashboard.account.locked_out"
AXES_VERBOSE = False
# axes warns when the lockout ignores the client address. Counting per user name is the point here (behind the TLS
# proxy every member of staff shares one address), and a user name cannot be rotated to dodge the count.
SILENCED_SYSTEM_CHECKS = [*globals().get("SILENCED_SYSTEM_CHECKS", []), "axes.W006"]
# A TOTP code after the password: required of every signed-in user in production, optional (on enrolling) in the demo.
STAFF_REQUIRE_2FA = env_bool("STAFF_REQUIRE_2FA", not DEBUG)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "trialsite")
# API tokens (manage.py issue_token --days N, default API_TOKEN_DAYS).
API_TOKEN_DAYS = env_int("API_TOKEN_DAYS", 90, minimum=1)

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_tokens": {"()": "trialsite.logging.RedactTokensFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tokens"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # The lockout library logs every sign-in at INFO; the audit trail has them. Its warnings (lockouts) stay.
        "axes": {"level": "WARNING"},
    },
}
