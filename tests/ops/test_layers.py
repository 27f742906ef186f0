"""The layers (data → mapping → orgs → grid → edge) and the migrations are part of the suite, not
only of ops/test's steps: a run of pytest alone still fails when an app imports upward or a model
change has no migration."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.django_db
def test_every_model_change_has_its_migration():
    # --check exits non-zero (SystemExit) when a migration is missing; --dry-run writes nothing.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
