"""Settings of the page benchmark's live server (ops/bench_page.py): the project's settings, with
static files served as in production (WhiteNoise, hashed names, gzip/brotli files beside them)
from a directory of the benchmark's own, and DEBUG off. The production mode itself is not used:
it refuses the demo's development PII keys, with which the benchmark's data is encrypted."""

import os
from pathlib import Path

from ops.settings import *  # noqa: F403 - the project's settings, then the differences
from ops.settings import STORAGES

DEBUG = False
STATIC_ROOT = Path(os.environ["WANGGE_BENCH_STATIC_ROOT"])
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
