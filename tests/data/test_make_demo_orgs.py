"""The organisation side of the demo data set: built once per module at demo scale on real PostGIS
(inside a transaction rolled back at the end, as in test_make_demo), then checked in SQL.
"""

from datetime import date

import pytest
from django.db import connection, transaction

from data import demo_orgs, demo_space
from data.demo import demo_build
from grid.models import Community, GridCell, Street
from orgs import pii
from orgs.models import Enterprise, GridWorker, PartyMember, PartyOrganisation
from orgs.rules import rules_check

pytestmark = pytest.mark.django_db

SEED = 7
TODAY = date(2026, 3, 10)
TABLES = ["orgs_partyorganisation", "orgs_partyorganisation_buildings", "orgs_partymember", "orgs_enterprise",
          "orgs_gridworker", "orgs_gridworker_grid_cells", "orgs_stationedcadre", "orgs_cadre", "orgs_committeeseat",
          "orgs_committeeseat_liaison_communities", "orgs_rectification", "orgs_starrating"]


def _rows(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _one(sql, params=None):
    return _rows(sql, params)[0][0]


def _fingerprint():
    """Row counts and an md5 of every row (minus ids, timestamps and cipher text) per table."""
    out = {}
    for table in TABLES:
        cols = [r[0] for r in _rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND column_name NOT IN ('id', 'created_at', 'updated_at') AND column_name NOT LIKE '%%_id' "
            "AND column_name NOT LIKE '%%cipher' ORDER BY column_name", [table])]
        expr = "concat_ws('|', " + ", ".join(f'"{c}"::text' for c in cols) + ")" if cols else "''"
        out[table] = _rows(f'SELECT count(*), md5(string_agg({expr}, \',\' ORDER BY {expr})) FROM "{table}"')[0]  # noqa: S608
    out["max_updated"] = _one("SELECT max(updated_at) FROM orgs_partymember")
    return out


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        first = demo_build(scale="demo", seed=SEED, today=TODAY)
        before = _fingerprint()
        ciphers = dict(_rows("SELECT id_number_hash, id_number_cipher FROM orgs_partymember"))
        second = demo_build(scale="demo", seed=SEED, today=TODAY)
        yield {"first": first, "second": second, "before": before, "ciphers": ciphers}
        transaction.set_rollback(True)


def test_counts_are_in_range(demo):
    members = PartyMember.objects.count()
    assert 2000 <= members <= 3000
    k = PartyOrganisation.Kind
    assert PartyOrganisation.objects.filter(kind=k.STREET_COMMITTEE).count() == 1
    assert PartyOrganisation.objects.filter(kind=k.COMMUNITY_ORG).count() == Community.objects.count()
    branches = PartyOrganisation.objects.filter(kind=k.GRID_BRANCH).count()
    assert 0.8 * GridCell.objects.count() <= branches < GridCell.objects.count()
    assert PartyOrganisation.objects.filter(kind=k.BUILDING_GROUP).count() > 100
    assert PartyOrganisation.objects.filter(kind=k.ENTERPRISE_ORG).count() >= 5
    assert PartyOrganisation.objects.filter(kind=k.RESIDENT_UNIT_ORG).count() >= 5
    assert PartyOrganisation.objects.filter(kind=k.JOINT_BRANCH).count() >= 1
    c = PartyMember.Category
    share = {cat: PartyMember.objects.filter(category=cat).count() / members for cat in c.values}
    assert 0.2 < share[c.RETIRED] < 0.4 and 0.01 < share[c.MOBILE] < 0.05 and 0 < share[c.LOST_CONTACT] < 0.02
    assert 0.03 < PartyMember.objects.filter(status="probationary").count() / members < 0.08
    employed = PartyMember.objects.filter(category=c.EMPLOYED)
    assert 0.12 < employed.filter(reported_community__isnull=False).count() / employed.count() < 0.3
    # Counts in the summary are those in the database.
    assert demo["first"].orgs.counts["party_members"] == members
    assert demo["first"].orgs.codes["street"] == "440803006"


def test_the_tree_agrees_with_space(demo):
    # Every grid branch's grid lies in its community organisation's community.
    assert _one("""SELECT count(*) FROM orgs_partyorganisation o JOIN orgs_partyorganisation p ON p.id = o.parent_id
                   JOIN grid_gridcell g ON g.id = o.grid_cell_id
                   WHERE o.kind = 'grid_branch' AND (p.kind <> 'community_org' OR g.community_id <> p.community_id)""") == 0
    # Every building group's buildings lie in its branch's grid.
    assert _one("""SELECT count(*) FROM orgs_partyorganisation o JOIN orgs_partyorganisation p ON p.id = o.parent_id
                   JOIN orgs_partyorganisation_buildings x ON x.partyorganisation_id = o.id
                   JOIN grid_building b ON b.id = x.building_id
                   WHERE o.kind = 'building_group'
                     AND (p.kind <> 'grid_branch' OR b.grid_cell_id IS DISTINCT FROM p.grid_cell_id)""") == 0
    # Community organisations hang under their street's committee; enterprises sit where their point is.
    assert _one("""SELECT count(*) FROM orgs_partyorganisation o JOIN orgs_partyorganisation p ON p.id = o.parent_id
                   JOIN grid_community c ON c.id = o.community_id
                   WHERE o.kind = 'community_org' AND (p.kind <> 'street_committee' OR c.street_id <> p.street_id)""") == 0
    assert _one("""SELECT count(*) FROM orgs_enterprise e
                   WHERE NOT EXISTS (SELECT 1 FROM grid_community c WHERE c.id = e.community_id AND ST_Covers(c.geom, e.geom))""") == 0
    # A member's building group is where the member lives.
    assert _one("""SELECT count(*) FROM orgs_partymember m JOIN orgs_partyorganisation o ON o.id = m.organisation_id
                   WHERE o.kind = 'building_group' AND NOT EXISTS (SELECT 1 FROM orgs_partyorganisation_buildings x
                     WHERE x.partyorganisation_id = o.id AND x.building_id = m.residence_building_id)""") == 0
    # Workers' grids lie in their community.
    assert _one("""SELECT count(*) FROM orgs_gridworker_grid_cells x JOIN orgs_gridworker w ON w.id = x.gridworker_id
                   JOIN grid_gridcell g ON g.id = x.gridcell_id WHERE g.community_id <> w.community_id""") == 0


def test_the_deliberate_gaps_exist_and_are_a_minority(demo):
    grids = GridCell.objects.count()
    without_branch = _one("""SELECT count(*) FROM grid_gridcell g WHERE NOT EXISTS
                             (SELECT 1 FROM orgs_partyorganisation o WHERE o.grid_cell_id = g.id)""")
    assert 1 <= without_branch <= 0.2 * grids
    with_members = _rows("""SELECT b.id, EXISTS (SELECT 1 FROM orgs_partyorganisation_buildings x WHERE x.building_id = b.id)
                            FROM grid_building b JOIN orgs_partymember m ON m.residence_building_id = b.id
                            GROUP BY b.id HAVING count(*) >= 3""")
    ungrouped = sum(1 for _b, grouped in with_members if not grouped)
    assert 1 <= ungrouped <= 0.25 * len(with_members)
    ent = _rows("""SELECT e.id, EXISTS (SELECT 1 FROM orgs_partyorganisation o WHERE o.premises_id = e.id)
                   FROM orgs_enterprise e JOIN orgs_partymember m ON m.work_enterprise_id = e.id AND m.status = 'full'
                   GROUP BY e.id HAVING count(*) >= 3""")
    assert 1 <= sum(1 for _e, own in ent if not own) <= 0.5 * len(ent)
    unattached = PartyMember.objects.filter(organisation__isnull=True).count()
    assert 1 <= unattached <= 0.03 * PartyMember.objects.count()
    assert PartyMember.objects.filter(organisation__isnull=True, category="lost_contact").exists()
    assert PartyMember.objects.filter(organisation__isnull=True, category__in=["employed", "retired"]).exists()
    workerless = _one("""SELECT count(*) FROM grid_gridcell g WHERE NOT EXISTS
                         (SELECT 1 FROM orgs_gridworker_grid_cells x WHERE x.gridcell_id = g.id)""")
    assert 1 <= workerless <= 0.2 * grids
    small = Enterprise.objects.exclude(own_party_orgs__isnull=False)
    assert small.filter(covering_joint_branch__isnull=False).exists() and small.filter(instructor__isnull=False).exists()


def test_rules_find_the_deliberate_violations_and_little_else(demo):
    violations = rules_check(street=Street.objects.get(code="440803006"), today=TODAY)
    codes = {}
    for v in violations:
        codes.setdefault(v.rule_code, []).append(v)
    assert len(codes["org_level_far_below_size"]) == 1
    assert codes["org_level_far_below_size"][0].detail["level"] == "branch"
    assert len(codes["org_term_overdue"]) == 1
    assert {v.detail["window_days"] for v in codes["org_term_expiring"]} == {30, 90}
    assert len(codes["community_staffing_short"]) == 1
    assert 1 <= len(codes["enterprise_needs_own_org"]) <= 8
    assert 1 <= len(codes["enterprise_uncovered"]) <= 10
    # Nothing else: levels match member counts, every branch has 3+ full members, 大工委 is valid.
    assert set(codes) == {"org_level_far_below_size", "org_term_overdue", "org_term_expiring",
                          "community_staffing_short", "enterprise_needs_own_org", "enterprise_uncovered"}
    weak = PartyOrganisation.objects.filter(weak=True)
    assert weak.count() == 2 and all(o.rectifications.filter(converted_on__isnull=True).exists() for o in weak)
    assert PartyOrganisation.objects.filter(rectifications__converted_on__isnull=False, weak=False).exists()
    assert PartyOrganisation.objects.filter(star_ratings__year=TODAY.year - 1).count() > 30
    big = PartyOrganisation.objects.get(kind="street_committee")
    seats = big.seats.count()
    assert big.is_enlarged and 9 <= seats <= 15 and 3 * big.seats.filter(is_resident_unit_head=True).count() >= seats


def test_personal_data_is_encrypted_and_valid(demo):
    raw = _rows("SELECT id_number_cipher, id_number_hash, phone_cipher FROM orgs_partymember ORDER BY id LIMIT 200")
    seen = set()
    for cipher, digest, phone_cipher in raw:
        assert cipher and not cipher.startswith("440803") and "440803" not in cipher
        clear = pii.pii_reveal(cipher)
        assert pii.normalise_id_number(clear) == clear and clear.startswith("440803")
        assert pii.keyed_hash(clear) == digest
        assert len(pii.pii_reveal(phone_cipher)) == 11
        seen.add(clear)
    assert len(seen) == len(raw)
    assert _one("SELECT count(*) FROM orgs_partymember WHERE id_number_hash IS NULL OR phone_hash IS NULL") == 0
    assert _one("SELECT count(*) FROM orgs_partymember WHERE id_number_cipher ~ '^[0-9]{17}[0-9X]$'") == 0
    # The birth date inside the number is the member's.
    member = PartyMember.objects.order_by("id").first()
    assert pii.pii_reveal(member.id_number_cipher)[6:14] == member.birth_date.strftime("%Y%m%d")
    assert not GridWorker.objects.filter(phone_hash__isnull=True).exists()


def test_a_second_run_changes_nothing(demo):
    second = demo["second"]
    assert not second.changed, (second.created, second.updated, second.deleted)
    assert _fingerprint() == demo["before"]
    # Cipher text is not rewritten either (Fernet tokens differ per call, so this would show it).
    assert dict(_rows("SELECT id_number_hash, id_number_cipher FROM orgs_partymember")) == demo["ciphers"]


def test_same_seed_gives_the_same_people():
    space = demo_space.build_space(scale="demo", seed=SEED)
    rules = {"min_fulltime_workers_per_community": 5, "residents_per_fulltime_worker": 1000}
    a = demo_orgs.build_orgs(space=space, today=TODAY, rules=rules)
    b = demo_orgs.build_orgs(space=space, today=TODAY, rules=rules)
    assert [(m.id_number, m.name, m.org) for m in a.members] == [(m.id_number, m.name, m.org) for m in b.members]
    assert [(o.code, o.level, o.name, o.term_started_on) for o in a.orgs] == \
           [(o.code, o.level, o.name, o.term_started_on) for o in b.orgs]
    other = demo_orgs.build_orgs(space=demo_space.build_space(scale="demo", seed=SEED + 1), today=TODAY, rules=rules)
    assert [m.id_number for m in other.members[:50]] != [m.id_number for m in a.members[:50]]
    assert len({m.id_number for m in a.members}) == len(a.members)
    assert len({m.phone for m in a.members} | {w.phone for w in a.workers}) == len(a.members) + len(a.workers)
