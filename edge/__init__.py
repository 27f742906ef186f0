"""The bottom layer every app's edge shares: the domain error with its stable code, the
reach-aware API view, query-string parsing (pagination, bbox, dates), the API's error mapping,
OpenAPI helpers, and GeoJSON lists written by PostGIS.

It knows no app: the reach of a request is resolved through `settings.WANGGE_REACH_OF_REQUEST`
(grid.access provides it; ops wires it), so `grid`, `orgs` and `mapping` all stand on it.
"""
