"""Settings for 网格通, read from the environment with defaults that work on a developer machine.

`ops/up` and `ops/test` create the database role the default DATABASE_URL names. Debian's
PostgreSQL authenticates Unix-socket connections by peer and TCP connections by password; we use
TCP with a password so that the same URL works for Django, Celery and peer servers such as tipg.

Production mode (WANGGE_ENV=production) refuses to start without a real SECRET_KEY and turns on
the transport-security settings that `manage.py check --deploy` asks for.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = os.environ.get("WANGGE_ENV", "development") == "production"
DEBUG = env_bool("DEBUG", not PRODUCTION)

_DEV_SECRET = "dev-only-insecure-secret-key-change-me-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
if PRODUCTION and (not SECRET_KEY or SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured("生产模式必须设置 SECRET_KEY 环境变量 (SECRET_KEY is required in production)")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "axes",
    "csp",
    "drf_spectacular",
    # Swagger UI and ReDoc as static files from PyPI: /api/docs/ must open on an intranet (no CDN).
    "drf_spectacular_sidecar",
    "leaflet",
    "grid",
    "orgs",
    "mapping",
    "data",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Cached map tiles from Redis alone, before the session and the user are loaded; every other
    # request (and any tile it cannot answer) goes on down the list.
    "mapping.tile_views.TileCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ops.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during authentication into a response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # Counts failed logins per username+address and locks out after AXES_FAILURE_LIMIT.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "lockout.html"
AXES_IPWARE_PROXY_COUNT = int(os.environ.get("AXES_IPWARE_PROXY_COUNT", "0"))

ROOT_URLCONF = "ops.urls"
WSGI_APPLICATION = "ops.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "ops" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# TCP + password (see the module docstring); the role and database are made by ops/lib/setup.sh.
DEFAULT_DATABASE_URL = "postgis://wangge:wangge@127.0.0.1:5432/wangge"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
# No JIT on our connections: the app's statements are short (a map tile, a page), and a dense
# tile's estimate crossed jit_above_cost, where compiling cost ~20 ms of a 10–40 ms statement.
# Once per connection here instead of a SET per statement (mapping.tiles_sql.tile_body).
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "wangge",
    }
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BEAT_SCHEDULE = {
    # Buildings drift out of their grid only when boundaries change, and the boundary service
    # already queues the recompute; this nightly sweep catches edits made outside the services
    # (e.g. by a DBA with psql) so assignment never stays stale for more than a day.
    "reassign-buildings-nightly": {
        "task": "grid.tasks.reassign_all_buildings",
        "schedule": timedelta(hours=24),
    },
    # Every community's coverage gaps, at a fixed quiet hour: catches what no listener heard of
    # and moves the visit and cadre windows to the new day.
    "recompute-gaps-nightly": {
        "task": "mapping.tasks.recompute_all_gaps",
        "schedule": crontab(hour=3, minute=15),
    },
    # The day's indicator snapshot of every unit (mapping.indicator_tasks), half an hour after the
    # gap recompute so it counts that run's gaps; it waits for the recompute if that runs long.
    "indicator-snapshots-nightly": {
        "task": "mapping.indicator_tasks.take_indicator_snapshots",
        "schedule": crontab(hour=3, minute=45),
    },
    # Residents' cases past their step's deadline are escalated (督办) within ten minutes; a run
    # escalates each case at most once per step limit, so overlapping runs change nothing twice.
    "escalate-overdue-cases": {
        "task": "orgs.tasks.escalate_overdue_cases",
        "schedule": timedelta(minutes=10),
    },
    # Inbox reminders at fixed hours (orgs.tasks): each is sent once per subject and period, so
    # these hours decide only when people hear, never how often. Cases at the start of the
    # morning and afternoon working periods; the slower rules once each morning.
    "remind-cases-due": {
        "task": "orgs.tasks.remind_cases_due",
        "schedule": crontab(hour="8,14", minute=0),
    },
    "remind-cadres-behind-pace": {
        "task": "orgs.tasks.remind_cadres_behind_pace",
        "schedule": crontab(hour=8, minute=5),
    },
    "remind-org-terms": {
        "task": "orgs.tasks.remind_org_terms",
        "schedule": crontab(hour=8, minute=10),
    },
    "remind-buildings-visit-due": {
        "task": "orgs.tasks.remind_buildings_visit_due",
        "schedule": crontab(hour=8, minute=15),
    },
}
# Task modules that autodiscovery (which imports each app's tasks.py) does not find.
CELERY_IMPORTS = ["mapping.indicator_tasks"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Pages outside the admin (the tablet page) sign in through the admin's login form.
LOGIN_URL = "/admin/login/"

TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS: list[Path | tuple[str, Path]] = [BASE_DIR / "ops" / "static"]
# Front-end packages fetched from the npm registry at set-up (ops/lib/setup.sh), never committed.
if (BASE_DIR / "ops" / "static_vendor").is_dir():
    STATICFILES_DIRS.append(("vendor", BASE_DIR / "ops" / "static_vendor"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Uploaded files (photos of visits and cases): the default storage keeps them here. They are never
# served from MEDIA_URL: the photo API streams each one after checking the caller's reach.
MEDIA_ROOT = Path(os.environ.get("WANGGE_MEDIA_ROOT") or BASE_DIR / "media")
MEDIA_URL = "/media/"
# Photos: a real image decoder decides (Pillow), never the file name; GPS tags are removed.
WANGGE_PHOTOS: dict[str, Any] = {
    "max_bytes": 8 * 1024 * 1024,
    "max_side_px": 8000,
    "formats": ["JPEG", "PNG", "WEBP"],
}

# Uploads above this are refused before they are parsed (imports go through files, not forms).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(5 * 1024 * 1024)))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Tablets hold a token; deleting it (admin, or POST /api/auth/token/revoke/) revokes the
        # device. First in the list so that a missing or revoked token answers 401 with
        # WWW-Authenticate: Token, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "edge.authentication.SessionCsrfAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON with a nesting limit and strict UTF-8: hostile bodies are a 400, never a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "edge.api_errors.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "edge.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "网格通 API",
    "DESCRIPTION": "街道网格化管理：网格、楼栋、党组织与覆盖缺口",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several serializers have a "kind" field with different choices; name the planners' one.
    "ENUM_NAME_OVERRIDES": {"PlanEditKindEnum": "mapping.plans_models.PlanEdit.Kind"},
}

# Basemap tiles are optional: government intranets have no internet, so the default is none and
# the map pages draw on a plain background. Set BASEMAP_TILES_URL to an intranet tile server
# (e.g. http://tiles.intranet/{z}/{x}/{y}.png) to get one.
BASEMAP_TILES_URL = os.environ.get("BASEMAP_TILES_URL", "")
BASEMAP_ATTRIBUTION = os.environ.get("BASEMAP_ATTRIBUTION", "")
LEAFLET_CONFIG = {
    "DEFAULT_CENTER": (21.19, 110.40),  # 霞山区, Zhanjiang
    "DEFAULT_ZOOM": 13,
    "MIN_ZOOM": 3,
    "MAX_ZOOM": 19,
    "TILES": [("底图", BASEMAP_TILES_URL, {"attribution": BASEMAP_ATTRIBUTION})] if BASEMAP_TILES_URL else [],
    "RESET_VIEW": False,
    "NO_GLOBALS": False,
}

# Content Security Policy: everything from our own origin; inline <script> only with the per-request
# nonce; inline style attributes are allowed because Leaflet positions tiles and markers with them.
_tile_origin = ""
if BASEMAP_TILES_URL:
    from urllib.parse import urlsplit

    # "http://{s}.tiles.intranet/{z}/{x}/{y}.png" -> "http://*.tiles.intranet"
    _parts = urlsplit(BASEMAP_TILES_URL)
    _tile_origin = f"{_parts.scheme}://{_parts.netloc.replace('{s}', '*')}"
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"] + ([_tile_origin] if _tile_origin else []),
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [SELF],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    SESSION_COOKIE_HTTPONLY = True

# Debian 12 ships GDAL 3.6, which cannot block GDAL from fetching remote spatial references.
# Imports here never pass a user's spatial-reference text to GDAL: the CRS is declared through
# grid/coords.py's own vocabulary and resolved by pyproj, and the intranet has no internet.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# Personal data (ID numbers, phones) is encrypted at rest with this key (Fernet, 32 url-safe base64
# bytes) and looked up through a keyed hash made with PII_HASH_KEY. Several comma-separated keys
# allow rotation: the first encrypts, all decrypt.
_DEV_PII_KEY = "ZGV2LW9ubHktcGlpLWtleS1ub3QtZm9yLXByb2QhISE="  # base64 of a dev-only 32-byte key
PII_ENCRYPTION_KEYS = env_list("PII_ENCRYPTION_KEYS", "" if PRODUCTION else _DEV_PII_KEY)
PII_HASH_KEY = os.environ.get("PII_HASH_KEY", "" if PRODUCTION else "dev-only-pii-hash-key")
if PRODUCTION and (not PII_ENCRYPTION_KEYS or _DEV_PII_KEY in PII_ENCRYPTION_KEYS or not PII_HASH_KEY):
    raise ImproperlyConfigured("生产模式必须设置 PII_ENCRYPTION_KEYS 和 PII_HASH_KEY (personal-data keys are required)")

# Thresholds of the rules the system checks (DOMAIN.md); a street office may tune them.
# Field events synced from tablets (orgs/sync.py).
# The edge (edge/) stands below every app and names none: the project wires in how a request's
# reach and audit actor are found.
WANGGE_REACH_OF_REQUEST = "grid.access.reach_of_request"
WANGGE_AUDIT_ACTOR_FROM_REQUEST = "grid.audit.set_actor_from_request"
# Who hears of changed communities (grid.changes): inside the transaction when outlines moved,
# after the commit for every change. Higher layers listen; the project names them here.
WANGGE_OUTLINE_LISTENERS: list[str] = ["orgs.services.enterprises_follow_outlines"]
WANGGE_CHANGE_LISTENERS: list[str] = ["mapping.tasks.queue_gap_recompute"]
# Grids partition their community (grid.partition): a leak, overlap or gap smaller than this, per
# piece, is survey noise and not reported; narrower gaps between neighbours count as mismatched edges.
WANGGE_PARTITION: dict[str, float] = {"tolerance_m2": 100.0, "gap_width_m": 2.0}
# Planners' drafts (mapping/plans*.py): the households a grid cell should hold (DOMAIN.md: 300–500),
# the footprint share that counts a building as wholly in one cell, and the Polsby-Popper score
# below which a cell is reported as oddly shaped.
WANGGE_PLANNING: dict[str, float] = {
    "households_min": 300,
    "households_max": 500,
    "building_share_min": 0.95,
    "compactness_min": 0.2,
}

WANGGE_SYNC: dict[str, int] = {
    "max_items": 500,  # per batch; a tablet sends more in several batches
    "clock_skew_seconds": 600,  # a tablet clock this far ahead is still believed
    "max_age_days": 90,  # older records are refused: they must be entered by an administrator
}

WANGGE_RULES: dict[str, Any] = {
    "branch_min_full_members": 3,  # 3+ full members may form a 支部
    "general_branch_members": 50,  # ~50+ a 党总支
    "committee_members": 100,  # 100+ a 党委
    "term_years_branch": 3,
    "term_years_community": 5,
    "term_reminder_days": [90, 30],
    "big_working_committee_size": [9, 15],  # 大工委
    "big_working_committee_resident_unit_share": 1 / 3,
    "big_party_committee_size": [7, 11],  # 大党委
    "residents_per_fulltime_worker": 1000,
    "min_fulltime_workers_per_community": 5,
    "enterprise_members_for_own_org": 3,
    "weak_org_conversion_target": 0.9,
    # A visit logged this far from the building or premises it names is flagged (admin list).
    "event_far_from_subject_m": 200,
    # Coverage gaps (mapping/): a residential building is visited at least once in this many days;
    # a grid whose households so visited are below this share is a gap.
    "visit_interval_days": 60,
    "grid_visit_rate_min": 0.5,
    "service_centre_reach_m": 1000,  # farther than this from every 党群服务中心 is a gap
    "gap_area_tolerance_m2": 100,  # uncovered or doubly gridded pieces smaller than this are noise
    "building_group_min_members": 3,  # residents (any status) that call for a 楼栋党小组
    # A stationed cadre is behind when the month's on-site days are below this share of an even
    # pace to the month's requirement (the admin cadre list's "进度落后").
    "cadre_pace_share": 0.8,
    # A stationed cadre's attendance (orgs/attendance.py): a check-in is on site when the circle of
    # its reported accuracy lies within the community grown by this tolerance (an 800 m fix proves
    # nothing); a day is attended when the on-site dwell (check-in to the next on-site check-in
    # within the gap, or to the check-out) reaches the minimum. The tablet checks in again every
    # heartbeat while the page stays open.
    "attendance_tolerance_m": 100,
    "attendance_min_dwell_minutes": 120,
    "attendance_max_gap_minutes": 45,
    "attendance_heartbeat_minutes": 15,
}

# Residents' cases (orgs/cases_*.py): the working periods of a working day (holidays and make-up
# days are data: orgs.WorkCalendarDay), the duplicate search cap and what counts as a repeat place.
WANGGE_CASES: dict[str, Any] = {
    "working_periods": [["08:30", "12:00"], ["14:00", "18:00"]],
    "nearby_max_m": 1000,  # FixMyStreet's cap: farther is another place, whatever the category says
    "nearby_limit": 20,
    "repeat_place_radius_m": 50,  # 3+ cases within 50 m in 90 days make a repeat place
    "repeat_place_min_cases": 3,
    "repeat_place_days": 90,
    "escalation_batch": 1000,  # cases per escalation transaction; the sweep loops until none is due
}

# django-axes' admin pages are English-only; lockouts are cleared with `manage.py axes_reset_username`.
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False  # its start-up banner would print on every manage.py command
