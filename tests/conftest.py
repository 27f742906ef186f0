import os

import pytest
from django.db import connection, connections

# Playwright's sync API runs an event loop in the test thread; Django's async-safety check would
# otherwise refuse the ORM calls that live_server tests make beside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Mark the test database so transactional tests may TRUNCATE the append-only audit log."""
    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
        assert name.startswith("test_"), name
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" SET wangge.audit_truncate_allowed = \'on\'')
        connections.close_all()
    yield
