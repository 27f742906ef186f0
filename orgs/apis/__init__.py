"""API of organisations and people: party organisations, members, grid workers, stationed cadres,
enterprises and rule violations, each scoped by the caller's reach (orgs.access).

Thin: each method parses with a nested serializer, calls a selector or one service, renders with a
nested output serializer. Writes need the `edit_orgs` capability (ReachAPIView); what they refer to
(parent, community, grid, buildings, premises) is looked up inside the caller's editing reach, and
the result must lie inside it too, or the whole write is rolled back. Refusals of the tree and
space rules come from the services as 400 with their stable code. Personal data is masked unless
the caller holds `view_pii` over that person; every unmasked answer is audited (read_pii).
"""
