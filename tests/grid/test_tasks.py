"""Tasks run through the real Redis broker and a real Celery worker; running one twice is harmless."""

import pytest
from celery.contrib.testing.worker import start_worker

from grid import tasks
from grid.models import Building
from ops.celery import app
from tests.factories import ORIGIN, BuildingFactory, CommunityFactory, GridCellFactory, rect, square

X0, Y0 = ORIGIN


@pytest.fixture
def community_with_unassigned_buildings():
    community = CommunityFactory()
    cell = GridCellFactory(community=community, boundary=rect(X0, Y0, X0 + 0.01, Y0 + 0.01))
    for i in range(3):
        BuildingFactory(community=community, geom=square(X0 + 0.001 + i * 0.002, Y0 + 0.002, 0.0003))
    Building.objects.update(grid_cell=None)
    return community, cell


@pytest.mark.django_db
def test_reassign_task_twice_changes_nothing_the_second_time(community_with_unassigned_buildings):
    community, cell = community_with_unassigned_buildings
    assert tasks.reassign_buildings.apply(args=[[community.id]]).get() == 3
    assert tasks.reassign_buildings.apply(args=[[community.id]]).get() == 0
    assert set(Building.objects.values_list("grid_cell", flat=True)) == {cell.id}


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_reassign_task_through_a_real_worker(community_with_unassigned_buildings):
    community, cell = community_with_unassigned_buildings
    # A worker thread consuming from the real Redis broker; the result comes back through Redis.
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=10):
        result = tasks.reassign_buildings.delay([community.id])
        assert result.get(timeout=30) == 3
    assert set(Building.objects.values_list("grid_cell", flat=True)) == {cell.id}
