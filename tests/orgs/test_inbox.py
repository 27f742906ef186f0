"""The inbox: notify is one statement and idempotent per (user, kind, subject, period); /api/inbox/
shows and marks only the caller's own messages; a foreign id is refused with nothing marked."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from grid.models import AuditEvent, Role
from orgs.inbox_models import Notification
from orgs.services import inbox
from tests.people import api_client, user_with


def _send(users, *, subject_id=1, period="2026-03-02"):
    return inbox.notify(
        user_ids=[u.pk for u in users],
        kind=Notification.Kind.BUILDINGS_VISIT_DUE,
        subject_type=Notification.Subject.USER,
        subject_id=subject_id,
        period=period,
        title="3栋楼待走访",
        body="您负责的网格中有3栋楼超过60天未走访，请安排走访",
        link="/dashboard/",
    )


@pytest.mark.django_db
def test_notify_is_one_statement_and_sends_each_reminder_once_per_period(space):
    users = [user_with(Role.GRID_WORKER, grid_cell=space.a1) for _ in range(5)]
    with CaptureQueriesContext(connection) as queries:
        assert _send(users) == 5
    assert len(queries) == 1
    assert _send(users) == 0  # the same subject and period: nothing new
    assert _send(users[:2], period="2026-03-03") == 2  # a new period is a new reminder
    assert Notification.objects.count() == 7


@pytest.mark.django_db
def test_the_inbox_api_lists_counts_and_marks_only_the_callers_messages(space):
    me = user_with(Role.GRID_WORKER, grid_cell=space.a1)
    other = user_with(Role.GRID_WORKER, grid_cell=space.a2)
    _send([me, other])
    _send([me], subject_id=2)
    client = api_client(me)

    listed = client.get("/api/inbox/").json()
    assert (listed["count"], listed["unread"]) == (2, 2)
    assert {m["title"] for m in listed["results"]} == {"3栋楼待走访"}
    assert listed["results"][0]["kind_label"] == "楼栋待走访"
    assert client.get("/api/inbox/?unread=true&page_size=1").json()["unread"] == 2

    first = listed["results"][0]["id"]
    answer = client.post("/api/inbox/read/", {"ids": [first]}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"marked": 1, "unread": 1}
    assert client.get("/api/inbox/?unread=true").json()["count"] == 1
    # Marking again changes nothing.
    assert client.post("/api/inbox/read/", {"ids": [first]}, format="json").json() == {
        "marked": 0,
        "unread": 1,
    }
    assert client.post("/api/inbox/read/", {"all": True}, format="json").json() == {"marked": 1, "unread": 0}
    # The other user's message is still unread.
    assert Notification.objects.get(user=other).read_at is None


@pytest.mark.django_db
def test_marking_another_users_message_is_refused_and_marks_nothing(space):
    me = user_with(Role.GRID_WORKER, grid_cell=space.a1)
    other = user_with(Role.GRID_WORKER, grid_cell=space.a2)
    _send([me, other])
    mine = Notification.objects.get(user=me).pk
    theirs = Notification.objects.get(user=other).pk
    audit = AuditEvent.objects.count()
    client = api_client(me)

    answer = client.post("/api/inbox/read/", {"ids": [mine, theirs]}, format="json")
    assert answer.status_code == 404
    body = answer.json()
    assert body["code"] == "notification_not_found" and "不属于您" in body["message"]
    assert body["ids"] == [theirs]
    assert not Notification.objects.filter(read_at__isnull=False).exists()
    assert AuditEvent.objects.count() == audit
    # The other user's message is not listed either.
    assert [m["id"] for m in client.get("/api/inbox/").json()["results"]] == [mine]

    assert client.get("/api/inbox/?page=9").json()["code"] == "not_found"
    for bad in ({}, {"ids": []}, {"ids": ["x"]}, {"ids": [mine], "all": True}):
        answer = client.post("/api/inbox/read/", bad, format="json")
        assert answer.status_code == 400, bad
        assert answer.json()["code"] == "invalid_input"
    assert not Notification.objects.filter(read_at__isnull=False).exists()


@pytest.mark.django_db
def test_the_inbox_needs_a_signed_in_user(client):
    assert client.get("/api/inbox/").status_code in (401, 403)
    assert client.post("/api/inbox/read/", {"all": True}, content_type="application/json").status_code in (
        401,
        403,
    )
