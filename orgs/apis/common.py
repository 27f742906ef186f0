"""What the orgs API modules share: their OpenAPI tags and the answers of a write."""

from edge.api import write_errors

TAG_ORGS = "党组织"
TAG_PEOPLE = "党员与工作人员"
TAG_ENTERPRISES = "两新组织"
TAG_RULES = "规则检查"

WRITE_ERRORS = write_errors(
    capability="edit_orgs",
    codes="如 invalid_input、org_parent_kind、org_grid_outside_parent_community、reference_not_found、outside_edit_reach",
)
