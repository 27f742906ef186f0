"""Subtree and ancestor reads: correct, and one query each, on a small tree and a 10,000-node one."""

import sys
import time

import pytest
from django.db import connection

from grid.models import Community, GridCell
from orgs import selectors
from orgs.models import PartyOrganisation
from tests.factories import CommunityFactory, StreetFactory
from tests.orgs_factories import (
    BuildingGroupFactory,
    community_org_for,
    grid_branch_for,
    street_committee_for,
)


@pytest.mark.django_db
def test_subtree_and_ancestors_of_a_small_tree(space, django_assert_num_queries):
    committee = street_committee_for(space.street)
    org_a, org_b = community_org_for(space.a), community_org_for(space.b)
    a1, a2 = grid_branch_for(space.a1), grid_branch_for(space.a2)
    group = BuildingGroupFactory(buildings=[space.house_a1])

    with django_assert_num_queries(1):
        subtree = {o.pk for o in selectors.party_org_subtree(org=org_a)}
    assert subtree == {org_a.pk, a1.pk, a2.pk, group.pk}
    assert set(selectors.party_org_subtree(org=org_a, include_self=False).values_list("pk", flat=True)) == {
        a1.pk,
        a2.pk,
        group.pk,
    }
    assert selectors.party_org_subtree(org=committee).count() == 6
    assert list(selectors.party_org_subtree(org=org_b)) == [org_b]

    with django_assert_num_queries(1):
        chain = selectors.party_org_ancestors(org=group)
    assert [o.pk for o in chain] == [committee.pk, org_a.pk, a1.pk]
    assert [o.distance for o in chain] == [3, 2, 1]
    assert selectors.party_org_ancestors(org=committee) == []


N_COMMUNITIES = 20
GRIDS_PER_COMMUNITY = 50
GROUPS_PER_GRID = 9  # 1 + 20 + 1,000 + 9,000 = 10,021 organisations


def _bulk_tree(street, committee):
    """Insert the tree set-based: one INSERT ... SELECT per level (no Python loop over rows)."""
    communities = [CommunityFactory(street=street) for _ in range(N_COMMUNITIES)]
    for c in communities:
        community_org_for(c)
    org_table, cell_table = PartyOrganisation._meta.db_table, GridCell._meta.db_table
    ids = [c.pk for c in communities]
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO "{cell_table}" (code, community_id, name, responsible_body, created_at, updated_at)
            SELECT c.code || lpad(g::text, 3, '0'), c.id, '网格' || g, '', now(), now()
            FROM "{Community._meta.db_table}" c, generate_series(1, %s) g WHERE c.id = ANY(%s)""",  # noqa: S608 - table names from models
            [GRIDS_PER_COMMUNITY, ids],
        )
        cur.execute(
            f"""INSERT INTO "{org_table}" (parent_id, kind, level, name, code, street_id, grid_cell_id, unit_name,
                term_years, is_enlarged, weak, created_at, updated_at)
            SELECT p.id, 'grid_branch', 'branch', g.name || '党支部', 'GB' || g.code, p.street_id, g.id, '', 3,
                   false, false, now(), now()
            FROM "{cell_table}" g JOIN "{org_table}" p ON p.kind = 'community_org' AND p.community_id = g.community_id
            WHERE g.community_id = ANY(%s)""",  # noqa: S608 - table names from models
            [ids],
        )
        cur.execute(
            f"""INSERT INTO "{org_table}" (parent_id, kind, level, name, code, street_id, unit_name,
                term_years, is_enlarged, weak, created_at, updated_at)
            SELECT b.id, 'building_group', 'group', b.name || '小组' || s, b.code || '-' || s, b.street_id, '', 3,
                   false, false, now(), now()
            FROM "{org_table}" b, generate_series(1, %s) s
            WHERE b.kind = 'grid_branch' AND b.street_id = %s""",  # noqa: S608 - table names from models
            [GROUPS_PER_GRID, street.pk],
        )
    return communities


def _expected_subtree(children: dict, root: int) -> set[int]:
    out, stack = set(), [root]
    while stack:
        node = stack.pop()
        out.add(node)
        stack.extend(children.get(node, ()))
    return out


@pytest.mark.django_db
def test_ten_thousand_orgs_subtree_and_ancestors(django_assert_num_queries):
    street = StreetFactory()
    committee = street_committee_for(street)
    communities = _bulk_tree(street, committee)
    parent_of = dict(PartyOrganisation.objects.filter(street=street).values_list("pk", "parent_id"))
    assert len(parent_of) == 1 + N_COMMUNITIES * (1 + GRIDS_PER_COMMUNITY * (1 + GROUPS_PER_GRID))
    children: dict[int, list[int]] = {}
    for node, parent in parent_of.items():
        children.setdefault(parent, []).append(node)

    timings = {}
    t0 = time.perf_counter()
    with django_assert_num_queries(1):
        whole = set(selectors.party_org_subtree(org=committee).values_list("pk", flat=True))
    timings["subtree(root, 10021)"] = time.perf_counter() - t0
    assert whole == set(parent_of)

    org_c = PartyOrganisation.objects.get(kind="community_org", community=communities[7])
    t0 = time.perf_counter()
    with django_assert_num_queries(1):
        part = set(selectors.party_org_subtree(org=org_c).values_list("pk", flat=True))
    timings["subtree(community org, 501)"] = time.perf_counter() - t0
    assert part == _expected_subtree(children, org_c.pk)
    assert len(part) == 1 + GRIDS_PER_COMMUNITY * (1 + GROUPS_PER_GRID)

    leaf = max(parent_of)  # a building group inserted last
    t0 = time.perf_counter()
    with django_assert_num_queries(1):
        chain = [o.pk for o in selectors.party_org_ancestors(org=leaf)]
    timings["ancestors(leaf)"] = time.perf_counter() - t0
    expected, node = [], parent_of[leaf]
    while node is not None:
        expected.append(node)
        node = parent_of[node]
    assert chain == list(reversed(expected))
    assert chain[0] == committee.pk and len(chain) == 3

    # Timings are for the report, not for an assertion (shared CI machines vary).
    sys.stderr.write("\n" + "; ".join(f"{k}: {v * 1000:.1f} ms" for k, v in timings.items()) + "\n")
