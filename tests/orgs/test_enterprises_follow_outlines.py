"""An enterprise's community is derived from its point: when a community's outline moves (by import,
the admin or a planner's redraw) the enterprise moves with it, in the same transaction."""

import json

import pytest
from django.db import transaction

from grid.changes import communities_changed
from grid.importers import units_import
from grid.models import AuditEvent, Community
from orgs.models import Enterprise
from tests.factories import ORIGIN, CommunityFactory, StreetFactory, multi, rect
from tests.orgs_factories import EnterpriseFactory

X0, Y0 = ORIGIN


def _two_neighbours():
    street = StreetFactory()
    west = CommunityFactory(street=street, geom=multi(rect(X0, Y0, X0 + 0.01, Y0 + 0.01)))
    east = CommunityFactory(street=street, geom=multi(rect(X0 + 0.01, Y0, X0 + 0.02, Y0 + 0.01)))
    return west, east


def _outline_file(tmp_path, shapes):
    features = [
        {
            "type": "Feature",
            "properties": {"code": c.code, "name": c.name, "residents": c.residents},
            "geometry": json.loads(geom.geojson),
        }
        for c, geom in shapes
    ]
    path = tmp_path / "communities.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.mark.django_db
def test_an_imported_outline_change_moves_the_enterprises_it_hands_over(tmp_path):
    west, east = _two_neighbours()
    shop = EnterpriseFactory(point=rect(X0 + 0.007, Y0 + 0.004, X0 + 0.008, Y0 + 0.005).centroid)
    untouched = EnterpriseFactory(point=rect(X0 + 0.001, Y0 + 0.004, X0 + 0.002, Y0 + 0.005).centroid)
    assert shop.community_id == west.pk and untouched.community_id == west.pk
    versions = dict(Community.objects.values_list("pk", "data_version"))

    # The boundary between the two moves west: the shop now lies in the east community.
    path = _outline_file(
        tmp_path,
        [
            (west, multi(rect(X0, Y0, X0 + 0.005, Y0 + 0.01))),
            (east, multi(rect(X0 + 0.005, Y0, X0 + 0.02, Y0 + 0.01))),
        ],
    )
    units_import(level="community", path=path, crs="wgs84")

    shop.refresh_from_db()
    untouched.refresh_from_db()
    assert shop.community_id == east.pk
    assert untouched.community_id == west.pk
    assert all(v > versions[pk] for pk, v in Community.objects.values_list("pk", "data_version"))
    row = AuditEvent.objects.filter(object_type="orgs.Enterprise", summary__contains="社区边界调整").get()
    assert row.changes["community"] == {str(shop.pk): [west.pk, east.pk]}


@pytest.mark.django_db
def test_the_listener_moves_nothing_when_the_outline_write_rolls_back():
    west, east = _two_neighbours()
    shop = EnterpriseFactory(point=rect(X0 + 0.007, Y0 + 0.004, X0 + 0.008, Y0 + 0.005).centroid)

    class Refused(Exception):
        pass

    with pytest.raises(Refused), transaction.atomic():
        Community.objects.filter(pk=west.pk).update(geom=multi(rect(X0, Y0, X0 + 0.005, Y0 + 0.01)))
        Community.objects.filter(pk=east.pk).update(geom=multi(rect(X0 + 0.005, Y0, X0 + 0.02, Y0 + 0.01)))
        communities_changed([west.pk, east.pk], outlines=True)
        assert Enterprise.objects.get(pk=shop.pk).community_id == east.pk  # moved inside the write
        raise Refused

    assert Enterprise.objects.get(pk=shop.pk).community_id == west.pk
