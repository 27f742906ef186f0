"""Every orgs update service starts the same way (orgs.services.common.locked_for_update): a field
it does not change is refused with the service's own code, before anything is locked or written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from grid.models import AuditEvent
from orgs import services
from orgs.errors import OrgError
from tests.orgs_factories import (
    CadreFactory,
    EnterpriseFactory,
    GridWorkerFactory,
    PartyMemberFactory,
    StationedCadreFactory,
    community_org_for,
)

pytestmark = pytest.mark.django_db


def _seat(space: Any) -> Any:
    committee = services.party_org_update(org=community_org_for(space.a), is_enlarged=True)
    return services.committee_seat_create(org=committee, person_name="王委员")


# (service, the keyword naming the object, the refusal's code, how to make the object)
UPDATES: list[tuple[str, str, str, Callable[[Any], Any]]] = [
    ("party_org_update", "org", "org_field_unknown", lambda space: community_org_for(space.a)),
    ("committee_seat_update", "seat", "seat_field_unknown", _seat),
    ("enterprise_update", "enterprise", "enterprise_field_unknown", lambda space: EnterpriseFactory(community=space.a)),
    ("party_member_update", "member", "member_field_unknown", lambda space: PartyMemberFactory()),
    ("grid_worker_update", "worker", "worker_field_unknown", lambda space: GridWorkerFactory(community=space.a)),
    ("cadre_update", "cadre", "cadre_field_unknown", lambda space: CadreFactory(street=space.street)),
    (
        "stationed_cadre_update",
        "cadre",
        "stationed_field_unknown",
        lambda space: StationedCadreFactory(community=space.a),
    ),
]


@pytest.mark.parametrize(("service", "keyword", "code", "make"), UPDATES, ids=[u[0] for u in UPDATES])
def test_an_update_of_a_field_the_service_does_not_change_is_refused_and_nothing_written(
    space, service, keyword, code, make
):
    obj = make(space)
    audit_rows = AuditEvent.objects.count()
    stored = type(obj).objects.filter(pk=obj.pk).values().get()
    # A field the service does change rides along: it is not written either.
    changeable = "person_name" if service == "committee_seat_update" else "name"
    with pytest.raises(OrgError) as refused:
        getattr(services, service)(**{keyword: obj, changeable: "改名", "secret_level": "绝密"})
    assert (refused.value.code, refused.value.message) == (code, "不能修改字段：secret_level")
    assert type(obj).objects.filter(pk=obj.pk).values().get() == stored
    assert AuditEvent.objects.count() == audit_rows
