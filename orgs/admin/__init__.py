"""Admin for organisations and people, one module per resource (a newcomer finds "members" in
people.py):

- scope.py: every list, page and choice limited to the user's reach (ReachAdminMixin, admin_scope);
- writes.py: every save, inline save and delete through orgs.services with the user's reach, a
  refusal shown as a form error in Chinese (ServiceWritesMixin);
- organisations.py: the tree, rectifications, star ratings, enlarged-committee seats;
- enterprises.py: 两新组织;
- people.py: party members and grid workers (personal data masked), cadres, stationed cadres;
- events.py: field visits and station contacts, read-only;
- cases.py: residents' cases (read-only), their categories and the working calendar.

Admin autodiscovery imports this package; importing the modules registers their admins.
"""

from orgs.admin import cases, enterprises, events, organisations, people  # noqa: F401
