"""/api/docs/ (Swagger UI) works on an intranet with no internet, under the strict CSP.

Swagger UI comes from drf-spectacular-sidecar's static files (installed from PyPI at set-up), and
its init script is served from our own origin, so the page needs no CDN and no inline script.
"""

import re

import pytest
from django.contrib.auth import get_user_model

PASSWORD = "docs-pass-2026"
SIDECAR = "/static/drf_spectacular_sidecar/swagger-ui-dist/"

# Installed before any page script runs (Playwright injects it outside the page's CSP): every
# policy violation the page causes is kept where the test can read it.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs ~0.3 s per user created or logged in; these tests are not about hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _directives(policy: str) -> dict[str, str]:
    return dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())


@pytest.mark.django_db
def test_docs_page_loads_nothing_from_outside_and_keeps_the_strict_policy(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # Every script and stylesheet is ours: no CDN, no inline <script> body.
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert f"{SIDECAR}swagger-ui-bundle.js" in sources
    assert f"{SIDECAR}swagger-ui.css" in sources
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script on the docs page"
    # The docs page gets the same policy as every other page: nothing loosened for it.
    docs = _directives(response.headers["Content-Security-Policy"])
    login = _directives(client.get("/admin/login/").headers["Content-Security-Policy"])
    assert docs.keys() == login.keys()
    for name in docs:
        assert re.sub(r"'nonce-[^']+'", "'nonce'", docs[name]) == re.sub(r"'nonce-[^']+'", "'nonce'", login[name])
    assert "'unsafe-inline'" not in docs["script-src"] and "'unsafe-eval'" not in docs["script-src"]


@pytest.mark.django_db
def test_the_init_script_is_served_from_our_origin(client):
    response = client.get("/api/docs/?script=")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in response.content.decode()
    assert '"/api/schema/"' in response.content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_docs_page_shows_the_operations_without_leaving_the_machine(browser_page):
    get_user_model().objects.create_user("docs-reader", password=PASSWORD, is_staff=True)
    s = browser_page
    s.context.add_init_script(RECORD_CSP_VIOLATIONS)
    s.admin_login("docs-reader", PASSWORD)

    s.goto("/api/docs/")
    page = s.page
    # The schema is fetched and rendered: the Chinese tags and their operations are on the page.
    page.get_by_role("heading", name="空间单元").first.wait_for(state="visible")
    for tag in ("党组织", "党员与工作人员", "走访与驻点联系"):
        assert page.get_by_role("heading", name=tag).first.is_visible(), tag
    assert page.locator(".opblock").count() > 20
    assert "网格通 API" in page.locator(".info .title").inner_text()
    # One operation opened shows its parameters and responses (rendered by the bundle, not eval).
    page.locator(".opblock-summary-control").first.click()
    page.locator(".opblock-body .responses-wrapper").first.wait_for(state="visible")
    s.screenshot("docs.png", full_page=False)

    assert s.external_requests() == []
    assert any(u.endswith(f"{SIDECAR}swagger-ui-bundle.js") for u in s.requests)
    assert page.evaluate("window.__cspViolations") == []
    assert s.console_errors == []
