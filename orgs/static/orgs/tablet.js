// The tablet page: visits are saved on the device first and synced when there is a network.
//
// Each record gets its UUID when it is saved, so a sync that is interrupted after the server
// stored the batch is simply sent again: the server answers "duplicate" for what it already has
// (orgs/sync.py). Records the server refuses stay on the device with its Chinese message until
// the worker deletes them. The queue lives in localStorage, per account.
(function () {
  "use strict";

  var QUEUE_KEY = JSON.parse(document.getElementById("queue-key").textContent);
  var CSRF = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var form = document.getElementById("visit-form");
  var list = document.getElementById("queue");
  var message = document.getElementById("message");
  var syncButton = document.getElementById("sync");
  var KINDS = {};
  Array.prototype.forEach.call(form.elements.kind.options, function (o) { KINDS[o.value] = o.text; });

  function load() {
    try {
      return JSON.parse(localStorage.getItem(QUEUE_KEY)) || [];
    } catch (e) {
      return [];
    }
  }

  function save(queue) {
    localStorage.setItem(QUEUE_KEY, JSON.stringify(queue));
  }

  // crypto.randomUUID needs a secure context; an intranet served over plain http is not one,
  // but getRandomValues works everywhere.
  function uuid4() {
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function render() {
    var queue = load();
    document.getElementById("count").textContent = String(queue.length);
    list.textContent = "";
    queue.forEach(function (entry) {
      var li = document.createElement("li");
      var item = entry.item;
      var when = new Date(item.occurred_at).toLocaleString("zh-CN", { hour12: false });
      li.textContent = when + " " + (KINDS[item.kind] || item.kind) + " " + (item.building || "") +
        " " + (item.household || "") + (item.position ? "（已定位）" : "（无定位）");
      li.dataset.id = item.id;
      if (entry.error) {
        var error = document.createElement("span");
        error.className = "error";
        error.textContent = "未能保存：" + entry.error;
        li.appendChild(error);
        var remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "删除";
        remove.addEventListener("click", function () {
          save(load().filter(function (e) { return e.item.id !== item.id; }));
          render();
        });
        li.appendChild(remove);
        var retry = document.createElement("button");
        retry.type = "button";
        retry.textContent = "重新同步";
        retry.addEventListener("click", function () {
          save(load().map(function (e) {
            if (e.item.id === item.id) {
              delete e.error;
            }
            return e;
          }));
          sync();
        });
        li.appendChild(retry);
      }
      list.appendChild(li);
    });
  }

  function showNetwork() {
    var net = document.getElementById("net");
    net.textContent = navigator.onLine ? "在线" : "离线";
    net.className = navigator.onLine ? "net" : "net offline";
  }

  // Best effort: a position when the device gives one within a few seconds, none otherwise.
  function locate() {
    return new Promise(function (resolve) {
      if (!navigator.geolocation) {
        resolve(null);
        return;
      }
      navigator.geolocation.getCurrentPosition(
        function (p) { resolve(p.coords); },
        function () { resolve(null); },
        { enableHighAccuracy: true, timeout: 5000, maximumAge: 60000 }
      );
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(form);
    var item = {
      id: uuid4(),
      occurred_at: new Date().toISOString(),
      kind: data.get("kind"),
      building: String(data.get("building") || "").trim(),
      household: String(data.get("household") || "").trim(),
      summary: String(data.get("summary") || "").trim()
    };
    locate().then(function (coords) {
      if (coords) {
        item.position = { type: "Point", coordinates: [coords.longitude, coords.latitude] };
        item.crs = "wgs84";
        item.accuracy_m = Math.round(coords.accuracy * 10) / 10;
      }
      var queue = load();
      queue.push({ item: item });
      save(queue);
      form.reset();
      message.textContent = "已保存在本机，待同步。";
      render();
    });
  });

  function sync() {
    // Refused records wait for the worker (delete, or retry once the cause is fixed).
    var queue = load().filter(function (e) { return !e.error; });
    if (!queue.length) {
      message.textContent = "没有待同步的记录。";
      return;
    }
    syncButton.disabled = true;
    message.textContent = "正在同步……";
    fetch("/api/sync/visits/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": CSRF },
      body: JSON.stringify({ items: queue.map(function (e) { return e.item; }) })
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (!answer.ok) {
          message.textContent = "同步失败：" + (answer.body.message || "请稍后再试");
          return;
        }
        var byId = {};
        answer.body.results.forEach(function (r) { byId[r.id] = r; });
        // Keep what the server refused, with its reason; drop what it holds now.
        var left = load().filter(function (e) {
          var r = byId[e.item.id];
          if (!r) {
            return true;  // saved while the request was on its way
          }
          if (r.status === "rejected") {
            e.error = r.message;
            return true;
          }
          return false;
        });
        save(left);
        message.textContent = "同步完成：已保存 " + answer.body.created + " 条，此前已保存 " +
          answer.body.duplicate + " 条，未能保存 " + answer.body.rejected + " 条。";
      })
      .catch(function () {
        message.textContent = "网络不可用，记录仍保存在本机，联网后再同步。";
      })
      .then(function () {
        syncButton.disabled = false;
        render();
      });
  }

  syncButton.addEventListener("click", sync);
  window.addEventListener("online", function () { showNetwork(); sync(); });
  window.addEventListener("offline", showNetwork);
  showNetwork();
  render();
})();
