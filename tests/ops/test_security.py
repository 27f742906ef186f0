"""Sessions and transport: tokens with revocation, login throttling, security headers, deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from grid.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db
PASSWORD = "Tablet-pass-2026"


@pytest.fixture
def worker():
    return User.objects.create_user(username="wanggeyuan", password=PASSWORD)


def test_tablet_token_works_until_revoked(client, worker):
    response = client.post("/api/auth/token/", {"username": "wanggeyuan", "password": PASSWORD},
                           content_type="application/json")
    assert response.status_code == 200
    token = response.json()["token"]
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    assert client.post("/api/auth/token/revoke/", **auth).status_code == 204
    assert not Token.objects.filter(user=worker).exists()
    again = client.post("/api/auth/token/revoke/", **auth)
    assert again.status_code == 401
    assert again.json()["code"] == "authentication_failed"
    assert list(AuditEvent.objects.values_list("action", flat=True).order_by("id")) == ["login", "revoke"]


def test_wrong_password_is_refused_with_a_code(client, worker):
    response = client.post("/api/auth/token/", {"username": "wanggeyuan", "password": "nope"},
                           content_type="application/json")
    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "message": "用户名或密码错误"}
    assert not Token.objects.exists()


def test_token_login_locks_out_after_repeated_failures(client, worker, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/api/auth/token/", {"username": "wanggeyuan", "password": "guess"},
                    content_type="application/json")
    # Even the right password is refused during the cool-off.
    response = client.post("/api/auth/token/", {"username": "wanggeyuan", "password": PASSWORD},
                           content_type="application/json")
    assert response.status_code == 429
    assert response.json()["code"] == "account_locked"
    assert not Token.objects.exists()


def test_admin_login_locks_out_after_repeated_failures(client, worker, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "wanggeyuan", "password": "guess"})
    response = client.post("/admin/login/", {"username": "wanggeyuan", "password": PASSWORD})
    assert response.status_code == 429
    assert "登录失败次数过多" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_pages_carry_a_content_security_policy_with_a_nonce(client):
    response = client.get("/admin/login/")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    # Scripts only from our origin or carrying the per-request nonce: never inline or eval'd.
    assert directives["script-src"].startswith("'self'")
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert "object-src 'none'" in policy
    assert "https:" not in policy and "http:" not in policy


def _run_settings(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WANGGE_", "SECRET_KEY", "PII_", "DJANGO_ALLOW_ASYNC"))}
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )


def test_production_mode_refuses_to_start_with_development_keys():
    result = _run_settings({"WANGGE_ENV": "production"}, "check")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_settings_pass_the_deploy_check():
    env = {
        "WANGGE_ENV": "production",
        "SECRET_KEY": Fernet.generate_key().decode() * 2,
        "PII_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PII_HASH_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "wangge.example.gov.cn",
    }
    result = _run_settings(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout


def test_unknown_api_path_answers_in_the_api_error_shape(client, settings):
    settings.DEBUG = False
    response = client.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "接口不存在"}
