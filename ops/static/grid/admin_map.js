/* Admin maps of 网格通 on top of django-leaflet (loaded after leaflet.forms.js).
 *
 * - L.WanggeGeometryField: with no basemap the feature is all there is to see, so the view is
 *   fitted to it as close as the map allows (django-leaflet stops at zoom 15, where a building is a
 *   few pixels), and grey context outlines (community, neighbouring grids) are drawn under it from
 *   the JSON the widget template writes beside the field.
 * - The drawing toolbar in Chinese (Leaflet.draw ships English only).
 */
(function () {
  "use strict";
  if (!window.L || !L.GeometryField) {
    return;
  }

  L.Control.Zoom.prototype.options.zoomInTitle = "放大";
  L.Control.Zoom.prototype.options.zoomOutTitle = "缩小";

  var CONTEXT_STYLES = {
    street: { color: "#8a8f98", weight: 1.5, dashArray: "6 4", fillOpacity: 0 },
    community: { color: "#6b7280", weight: 2, dashArray: "6 4", fillColor: "#9ca3af", fillOpacity: 0.06 },
    grid: { color: "#9ca3af", weight: 1.2, dashArray: "3 3", fillOpacity: 0 },
    current: { color: "#d97706", weight: 2, dashArray: "4 4", fillOpacity: 0 }
  };

  function readContext(fieldid) {
    var features = readJSON(fieldid + "-context");
    return features && features.length ? { type: "FeatureCollection", features: features } : null;
  }

  L.WanggeGeometryField = L.GeometryField.extend({
    addTo: function (map) {
      var data = readContext(this.options.fieldid);
      if (data) {
        // Not interactive: clicks and the edit toolbar act on the field's own feature only.
        this._contextLayer = L.geoJSON(data, {
          interactive: false,
          style: function (feature) {
            return CONTEXT_STYLES[feature.properties.kind] || CONTEXT_STYLES.grid;
          }
        }).addTo(map);
      }
      return L.GeometryField.prototype.addTo.call(this, map);
    },

    _setView: function () {
      var map = this._map;
      var bounds = null;
      if (this.drawnItems.getLayers().length > 0) {
        bounds = this.drawnItems.getBounds();
      } else if (this._contextLayer) {
        // Nothing drawn yet (a new record): show the area it belongs to.
        bounds = this._contextLayer.getBounds();
      }
      if (bounds && bounds.isValid()) {
        var maxZoom = Math.min(map.getMaxZoom(), 18);
        // No animation: the page opens already framed on the feature, and the first click of a
        // drawing is not lost to a map still gliding from django-leaflet's default view.
        map.fitBounds(bounds, {
          padding: [30, 30], maxZoom: isFinite(maxZoom) ? maxZoom : 19, animate: false
        });
      }
    }
  });

  function readJSON(id) {
    var node = document.getElementById(id);
    if (!node) {
      return null;
    }
    try {
      return JSON.parse(node.textContent);
    } catch (e) {
      return null;
    }
  }

  // Read-only maps (grid/readonly_map.html): the geometry, its context, no editing tools.
  function drawReadonlyMap(el) {
    var maxZoom = parseInt(el.getAttribute("data-max-zoom"), 10) || 19;
    var map = L.map(el, { maxZoom: maxZoom, zoomControl: true });
    map.attributionControl.setPrefix("");
    (readJSON(el.id + "-tiles") || []).forEach(function (tile) {
      L.tileLayer(tile[1], L.Util.extend({ maxZoom: maxZoom }, tile[2] || {})).addTo(map);
    });
    L.control.scale({ imperial: false }).addTo(map);
    var context = readJSON(el.id + "-context");
    if (context && context.length) {
      L.geoJSON({ type: "FeatureCollection", features: context }, {
        interactive: false,
        style: function (feature) {
          return CONTEXT_STYLES[feature.properties.kind] || CONTEXT_STYLES.grid;
        }
      }).addTo(map);
    }
    var geometry = readJSON(el.id + "-geometry");
    var layer = L.geoJSON(geometry, { style: { color: "#2563eb", weight: 2.5, fillOpacity: 0.2 } }).addTo(map);
    var bounds = layer.getBounds();
    if (bounds.isValid()) {
      map.fitBounds(bounds, { padding: [30, 30], maxZoom: Math.min(maxZoom, 18), animate: false });
    } else {
      map.setView([0, 0], 2);
    }
  }

  function drawReadonlyMaps() {
    var maps = document.querySelectorAll(".wangge-readonly-map");
    for (var i = 0; i < maps.length; i++) {
      drawReadonlyMap(maps[i]);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawReadonlyMaps);
  } else {
    drawReadonlyMaps();
  }

  if (L.drawLocal) {
    var d = L.drawLocal.draw, e = L.drawLocal.edit;
    d.toolbar.actions = { title: "取消绘制", text: "取消" };
    d.toolbar.finish = { title: "完成绘制", text: "完成" };
    d.toolbar.undo = { title: "删除上一个点", text: "删除上一点" };
    d.toolbar.buttons = {
      polyline: "画线", polygon: "画多边形", rectangle: "画矩形",
      circle: "画圆", marker: "放置标记", circlemarker: "放置圆点"
    };
    d.handlers.marker.tooltip.start = "在地图上单击放置位置。";
    d.handlers.polygon.tooltip = {
      start: "单击开始绘制。", cont: "单击继续绘制。", end: "单击第一个点闭合图形。"
    };
    d.handlers.polyline.error = "<strong>错误：</strong>边不能相交！";
    d.handlers.polyline.tooltip = { start: "单击开始画线。", cont: "单击继续画线。", end: "单击最后一个点结束。" };
    d.handlers.rectangle.tooltip.start = "按住并拖动画矩形。";
    d.handlers.simpleshape.tooltip.end = "松开鼠标完成绘制。";
    e.toolbar.actions = {
      save: { title: "保存修改", text: "保存" },
      cancel: { title: "取消编辑，放弃全部修改", text: "取消" },
      clearAll: { title: "清除全部图形", text: "全部清除" }
    };
    e.toolbar.buttons = {
      edit: "编辑图形", editDisabled: "没有可编辑的图形",
      remove: "删除图形", removeDisabled: "没有可删除的图形"
    };
    e.handlers.edit.tooltip = { text: "拖动节点修改图形。", subtext: "点“取消”撤销修改。" };
    e.handlers.remove.tooltip.text = "单击要删除的图形。";
  }
  L.GeometryField.unsavedText = "地图上的图形尚未保存";

})();
