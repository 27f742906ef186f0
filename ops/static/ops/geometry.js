// GeoJSON helpers the map pages share (mapping/static/mapping/dashboard.js, planning.js).

// [west, south, east, north] of a GeoJSON geometry (any type, collections included), or null
// for an empty one: what the pages fit the map to.
export function bboxOfGeometry(geometry) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (coords) => {
    if (typeof coords[0] === 'number') {
      box[0] = Math.min(box[0], coords[0]); box[1] = Math.min(box[1], coords[1]);
      box[2] = Math.max(box[2], coords[0]); box[3] = Math.max(box[3], coords[1]);
    } else coords.forEach(walk);
  };
  if (geometry && geometry.coordinates) walk(geometry.coordinates);
  if (geometry && geometry.geometries) geometry.geometries.forEach((g) => walk(g.coordinates));
  return Number.isFinite(box[0]) ? box : null;
}
