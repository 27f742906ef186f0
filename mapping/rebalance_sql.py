"""The suggested rebalance's one load (mapping.rebalance_services): a community's cells in force and
its buildings with today's cell, as columns the algorithm (mapping.rebalance) takes whole.

Raw SQL because the answer is columns of WKB turned into shapely arrays in one call
(shapely.from_wkb on the column), not model instances with GEOS geometries converted one by one;
and because "today's cell" of a building must be a cell with a boundary in force (the join on
upper_inf(valid)), which is the definition every planners' statement uses (mapping.plans_sql).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from django.db import connection

from grid.models import Building, Community, GridBoundary, GridCell
from mapping.rebalance import BuildingsIn, CellIn, RebalanceInput

BOUNDARY = GridBoundary._meta.db_table
CELL = GridCell._meta.db_table
BUILDING = Building._meta.db_table


def community_load(community: Community) -> RebalanceInput:
    """The community's outline, its cells in force (by code) and every building of it with the
    code of the cell in force holding it today (None: no cell), in two statements."""
    with connection.cursor() as cursor:
        # The cells in force: the open-ended boundary version of each (the EXCLUDE constraint
        # allows one at a time).
        cursor.execute(
            f"""SELECT c.code, c.name, ST_AsBinary(gb.geom) FROM "{CELL}" c
                JOIN "{BOUNDARY}" gb ON gb.cell_id = c.id AND upper_inf(gb.valid)
                WHERE c.community_id = %s ORDER BY c.code""",  # noqa: S608 - names from models
            [community.pk],
        )
        cell_rows = cursor.fetchall()
        # Every building with today's cell, when that cell is in force (a building of a retired
        # cell waits for reassignment: it belongs nowhere today).
        cursor.execute(
            f"""SELECT b.code, b.name, b.households, ST_AsBinary(b.geom), t.code
                FROM "{BUILDING}" b
                LEFT JOIN "{CELL}" t ON t.id = b.grid_cell_id AND EXISTS (
                    SELECT 1 FROM "{BOUNDARY}" gb WHERE gb.cell_id = t.id AND upper_inf(gb.valid))
                WHERE b.community_id = %s ORDER BY b.code""",  # noqa: S608 - names from models
            [community.pk],
        )
        building_rows = cursor.fetchall()
    index = {row[0]: k for k, row in enumerate(cell_rows)}
    cells = [
        CellIn(code=code, name=name, shape=geom)
        for (code, name, _), geom in zip(
            cell_rows, shapely.from_wkb([bytes(r[2]) for r in cell_rows]) if cell_rows else [], strict=True
        )
    ]
    columns: list[tuple[Any, ...]] = list(zip(*building_rows, strict=True)) if building_rows else [()] * 5
    buildings = BuildingsIn(
        codes=list(columns[0]),
        names=list(columns[1]),
        households=np.array(columns[2], dtype=np.int64),
        footprints=shapely.from_wkb([bytes(w) for w in columns[3]]) if building_rows else np.array([], dtype=object),
        today=np.array([index.get(code, -1) for code in columns[4]], dtype=np.int64),
    )
    outline = shapely.from_wkb(bytes(community.geom.wkb))
    return RebalanceInput(outline=outline, cells=cells, buildings=buildings)
