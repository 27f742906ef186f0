"""Every write to organisations and people goes through these functions: one transaction each,
one audit row each. Split by what they write (a newcomer finds "members" in people.py):

- organisations.py: the tree (its rules stated there), rectifications, star ratings, 大工委 seats;
- enterprises.py: 两新组织, located by their point;
- people.py: party members, grid workers, cadres and stationed cadres;
- cases.py: residents' cases (民情台账): raising, the loop, 督办, categories and the calendar;
- common.py: the audit snapshot/diff and PII sealing they share.

Callers import the package: `from orgs import services; services.party_member_create(...)`.
"""

from orgs.services.cases import *  # noqa: F403
from orgs.services.enterprises import *  # noqa: F403
from orgs.services.organisations import *  # noqa: F403
from orgs.services.people import *  # noqa: F403
