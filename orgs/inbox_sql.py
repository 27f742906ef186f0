"""The inbox's statements: every reminder sweep is one INSERT … SELECT … ON CONFLICT DO NOTHING.

Raw SQL because each sweep joins the subjects to their recipients and writes the messages in one
statement (set-based, however many users and subjects), and because ON CONFLICT DO NOTHING on the
UNIQUE (user, kind, subject_type, subject_id, period) is what makes a re-run send nothing twice;
the ORM's bulk_create(ignore_conflicts=True) cannot say INSERT … SELECT nor count what it wrote.
Values only ever as parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from django.db import connection

_COLUMNS = "user_id, kind, subject_type, subject_id, period, title, body, link, created_at"
_ON_CONFLICT = "ON CONFLICT ON CONSTRAINT notification_once_per_period DO NOTHING"


def _execute(statement: str, params: dict[str, Any] | Sequence[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def insert_rows(rows: Sequence[dict[str, Any]], *, now: datetime) -> int:
    """Insert the given messages (one per user), skipping those already sent; one statement."""
    if not rows:
        return 0
    columns = ("user_id", "kind", "subject_type", "subject_id", "period", "title", "body", "link")
    arrays = {c: [r[c] for r in rows] for c in columns}
    # unnest of parallel arrays: many rows in one round trip and one statement.
    return _execute(
        f"""
        INSERT INTO orgs_notification ({_COLUMNS})
        SELECT u, k, st, sid, p, t, b, l, %(now)s
        FROM unnest(%(user_id)s::bigint[], %(kind)s::text[], %(subject_type)s::text[],
                    %(subject_id)s::bigint[], %(period)s::text[], %(title)s::text[], %(body)s::text[],
                    %(link)s::text[]) AS r(u, k, st, sid, p, t, b, l)
        {_ON_CONFLICT}
        """,  # noqa: S608 - column list and conflict clause are constants; values are parameters
        arrays | {"now": now},
    )


def insert_case_reminders(
    *,
    now: datetime,
    working_horizon: datetime,
    urgent_horizon: datetime,
    step_roles: Sequence[tuple[str, str]],
    state_labels: Sequence[tuple[str, str]],
) -> dict[str, int]:
    """Open cases whose step is due within the horizon (working hours, or continuous hours for an
    urgent category) and those past it, to their handlers and, when overdue and escalated, to the
    escalation body's admins. The period is the step's deadline: one reminder per step and kind.

    Handlers: users holding an active role on the case's grid cell or community that may take the
    step's next action (step_roles: state → role pairs, from orgs.access.case_action_roles). The
    escalation body's admins: the community admins of a community organisation, the street admins
    of a street committee (the body a 督办 went to answers for the case from then on)."""
    statement = f"""
        WITH steps(state, role) AS (SELECT * FROM unnest(%(step_state)s::text[], %(step_role)s::text[])),
        labels(state, label) AS (SELECT * FROM unnest(%(label_state)s::text[], %(label)s::text[])),
        due AS (
            SELECT c.id, c.state, c.deadline, c.grid_cell_id, c.community_id, c.escalated_to_id,
                   cat.name AS category, l.label,
                   CASE WHEN c.deadline <= %(now)s THEN 'case_overdue' ELSE 'case_due_soon' END AS kind
            FROM orgs_case c
            JOIN orgs_casecategory cat ON cat.id = c.category_id
            JOIN labels l ON l.state = c.state
            WHERE c.closed_at IS NULL
              AND c.deadline <= CASE WHEN cat.urgent THEN %(urgent_horizon)s ELSE %(working_horizon)s END
        ),
        recipients AS (
            SELECT ra.user_id, d.id AS case_id
            FROM due d
            JOIN steps s ON s.state = d.state
            JOIN grid_roleassignment ra ON ra.role = s.role AND ra.revoked_at IS NULL
                 AND (ra.grid_cell_id = d.grid_cell_id OR ra.community_id = d.community_id)
            UNION
            SELECT ra.user_id, d.id
            FROM due d
            JOIN orgs_partyorganisation o ON o.id = d.escalated_to_id
            JOIN grid_roleassignment ra ON ra.revoked_at IS NULL AND (
                 (o.kind = 'community_org' AND ra.role = 'community_admin' AND ra.community_id = o.community_id)
              OR (o.kind = 'street_committee' AND ra.role = 'street_admin' AND ra.street_id = o.street_id))
            WHERE d.kind = 'case_overdue'
        )
        INSERT INTO orgs_notification ({_COLUMNS})
        SELECT r.user_id, d.kind, 'case', d.id,
               to_char(d.deadline AT TIME ZONE %(tz)s, 'YYYY-MM-DD"T"HH24:MI'),
               CASE WHEN d.kind = 'case_overdue'
                    THEN format('事项#%%s（%%s）已超期', d.id, d.category)
                    ELSE format('事项#%%s（%%s）即将到期', d.id, d.category) END,
               format('「%%s」环节时限为%%s，%%s', d.label,
                      to_char(d.deadline AT TIME ZONE %(tz)s, 'YYYY-MM-DD HH24:MI'),
                      CASE WHEN d.kind = 'case_overdue' THEN '已超过时限，请尽快办理' ELSE '请在时限前办理' END),
               '/ledger/?case=' || d.id,
               %(now)s
        FROM recipients r JOIN due d ON d.id = r.case_id
        {_ON_CONFLICT}
        RETURNING kind
    """  # noqa: S608 - column list and conflict clause are constants; values are parameters
    from django.conf import settings

    params: dict[str, Any] = {
        "now": now,
        "working_horizon": working_horizon,
        "urgent_horizon": urgent_horizon,
        "step_state": [s for s, _ in step_roles],
        "step_role": [r for _, r in step_roles],
        "label_state": [s for s, _ in state_labels],
        "label": [lab for _, lab in state_labels],
        "tz": settings.TIME_ZONE,
    }
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        kinds = [k for (k,) in cursor.fetchall()]
    return {"case_due_soon": kinds.count("case_due_soon"), "case_overdue": kinds.count("case_overdue")}


def insert_cadre_reminders(
    *, now: datetime, month_start: datetime, next_month: datetime, today: date, factor: float, period: str
) -> int:
    """Stationed cadres in post whose on-site days this month lag the even pace (days < factor ×
    required, factor = cadre_pace_share × the month's elapsed share: orgs.rules.cadre_behind_pace
    with its arithmetic in SQL), to the cadre's own user and the admins of the cadre's street."""
    statement = f"""
        WITH behind AS (
            SELECT sc.id, sc.name, sc.user_id, sc.required_days_per_month AS required, com.street_id,
                   com.name AS community,
                   (SELECT count(DISTINCT (ct.occurred_at AT TIME ZONE %(tz)s)::date)
                      FROM orgs_stationcontact ct
                     WHERE ct.cadre_id = sc.id AND ct.kind = 'check_in' AND ct.on_site
                       AND ct.occurred_at >= %(month_start)s AND ct.occurred_at < %(next_month)s) AS days
            FROM orgs_stationedcadre sc
            JOIN grid_community com ON com.id = sc.community_id
            WHERE sc.period_start <= %(today)s AND (sc.period_end IS NULL OR sc.period_end >= %(today)s)
        ),
        late AS (SELECT * FROM behind WHERE days < %(factor)s * required),
        recipients AS (
            SELECT user_id, id AS cadre_id FROM late WHERE user_id IS NOT NULL
            UNION
            SELECT ra.user_id, l.id FROM late l
            JOIN grid_roleassignment ra ON ra.role = 'street_admin' AND ra.revoked_at IS NULL
                 AND ra.street_id = l.street_id
        )
        INSERT INTO orgs_notification ({_COLUMNS})
        SELECT r.user_id, 'cadre_behind_pace', 'cadre', l.id, %(period)s,
               format('驻点干部%%s本月在岗驻点进度落后', l.name),
               format('%%s驻%%s社区，本月已在岗驻点%%s天，每月应驻%%s天，低于进度要求，请跟进', l.name,
                      l.community, l.days, l.required),
               '/admin/orgs/stationedcadre/' || l.id || '/change/',
               %(now)s
        FROM recipients r JOIN late l ON l.id = r.cadre_id
        {_ON_CONFLICT}
    """  # noqa: S608 - column list and conflict clause are constants; values are parameters
    from django.conf import settings

    return _execute(
        statement,
        {
            "now": now,
            "month_start": month_start,
            "next_month": next_month,
            "today": today,
            "factor": factor,
            "period": period,
            "tz": settings.TIME_ZONE,
        },
    )


def insert_visit_reminders(*, now: datetime, since: datetime, interval_days: int, period: str) -> int:
    """One message per grid worker per day: how many buildings of their grids nobody visited since
    `since` (a visit counts for the building it was logged at)."""
    statement = f"""
        INSERT INTO orgs_notification ({_COLUMNS})
        SELECT ra.user_id, 'buildings_visit_due', 'user', ra.user_id, %(period)s,
               format('%%s栋楼待走访', count(DISTINCT b.id)),
               format('您负责的网格中有%%s栋楼超过%%s天未走访，请安排走访', count(DISTINCT b.id), %(days)s),
               '/dashboard/',
               %(now)s
        FROM grid_roleassignment ra
        JOIN grid_building b ON b.grid_cell_id = ra.grid_cell_id
        WHERE ra.role = 'grid_worker' AND ra.revoked_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM orgs_visit v WHERE v.building_id = b.id AND v.occurred_at >= %(since)s)
        GROUP BY ra.user_id
        {_ON_CONFLICT}
    """  # noqa: S608 - column list and conflict clause are constants; values are parameters
    return _execute(statement, {"now": now, "since": since, "days": interval_days, "period": period})


def admins_of_units(*, community_ids: Sequence[int], street_ids: Sequence[int]) -> list[tuple[int, str, int]]:
    """(user, unit kind, unit id) of every active community admin of `community_ids` and street
    admin of `street_ids`: whom a term reminder goes to."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT user_id, 'community', community_id FROM grid_roleassignment
             WHERE role = 'community_admin' AND revoked_at IS NULL AND community_id = ANY(%s)
            UNION
            SELECT user_id, 'street', street_id FROM grid_roleassignment
             WHERE role = 'street_admin' AND revoked_at IS NULL AND street_id = ANY(%s)
            """,
            [list(community_ids), list(street_ids)],
        )
        return [(u, k, i) for u, k, i in cursor.fetchall()]
