// The tablet page: visits (and a stationed cadre's check-ins and contacts) are saved on the
// device first and synced when there is a network.
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
  var contactForm = document.getElementById("contact-form");
  var checkIn = document.getElementById("check-in");
  var KINDS = { check_in: "驻点签到", check_out: "驻点签退", contact: "联系群众", case: "民情事项" };
  Array.prototype.forEach.call(form.elements.kind.options, function (o) { KINDS[o.value] = o.text; });
  var ENDPOINTS = {
    visits: "/api/sync/visits/", contacts: "/api/sync/station-contacts/", cases: "/api/sync/cases/"
  };
  // Records are sent in this order: a case names its visit, which must be on the server first.
  var ORDER = ["visits", "contacts", "cases"];

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
      var when = new Date(item.occurred_at || item.reported_at).toLocaleString("zh-CN", { hour12: false });
      li.textContent = entry.endpoint === "cases"
        ? when + " 民情事项：" + item.description
        : when + " " + (KINDS[item.kind] || item.kind) + " " + (item.building || "") +
          " " + (item.household || item.contact_name || item.label || "") + (item.position ? "（已定位）" : "（无定位）");
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
    renderPhotos();
  }

  // Photos wait in IndexedDB (localStorage holds strings of a few MB at most), under this
  // account, each with its own UUID and the UUID of its visit or case. They are uploaded once
  // their record has left the queue (the server holds it); the photo's UUID makes a retried
  // upload a duplicate, never a second copy.
  var PHOTO_DB = QUEUE_KEY + ".photos";

  function photoStore(mode, action) {
    return new Promise(function (resolve, reject) {
      if (!window.indexedDB) {
        reject(new Error("本机浏览器不能保存照片"));
        return;
      }
      var open = indexedDB.open(PHOTO_DB, 1);
      open.onupgradeneeded = function () { open.result.createObjectStore("photos", { keyPath: "id" }); };
      open.onerror = function () { reject(open.error); };
      open.onsuccess = function () {
        var db = open.result;
        var tx = db.transaction("photos", mode);
        var request = action(tx.objectStore("photos"));
        tx.oncomplete = function () { db.close(); resolve(request ? request.result : undefined); };
        tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
      };
    });
  }

  function keepPhotos(files, subject) {
    if (!files.length) {
      return Promise.resolve();
    }
    return photoStore("readwrite", function (store) {
      files.forEach(function (file) {
        store.put({ id: uuid4(), subject: subject, blob: file, name: file.name || "photo.jpg", error: "" });
      });
      return null;
    });
  }

  function allPhotos() {
    return photoStore("readonly", function (store) { return store.getAll(); }).catch(function () { return []; });
  }

  function renderPhotos() {
    allPhotos().then(function (photos) {
      document.getElementById("photo-count").textContent = String(photos.length);
      Array.prototype.forEach.call(list.querySelectorAll("li.photo"), function (li) { li.remove(); });
      photos.filter(function (p) { return p.error; }).forEach(function (p) {
        var li = document.createElement("li");
        li.className = "photo";
        li.dataset.id = p.id;
        li.textContent = "照片 " + p.name;
        var error = document.createElement("span");
        error.className = "error";
        error.textContent = "未能上传：" + p.error;
        li.appendChild(error);
        var remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "删除";
        remove.addEventListener("click", function () {
          photoStore("readwrite", function (store) { return store.delete(p.id); }).then(renderPhotos);
        });
        li.appendChild(remove);
        list.appendChild(li);
      });
    });
  }

  // Upload the photos whose record the server holds (no longer queued here). Answers: the count
  // uploaded; a refused photo stays with its Chinese reason; a network failure leaves it queued.
  function uploadPhotos() {
    var queued = {};
    load().forEach(function (e) { queued[e.item.id] = true; });
    return allPhotos().then(function (photos) {
      var ready = photos.filter(function (p) { return !p.error && !queued[p.subject.visit || p.subject.case]; });
      var uploaded = 0;
      var chain = Promise.resolve();
      ready.forEach(function (p) {
        chain = chain.then(function () {
          var body = new FormData();
          body.append("id", p.id);
          body.append(p.subject.case ? "case" : "visit", p.subject.case || p.subject.visit);
          body.append("file", p.blob, p.name);
          return fetch("/api/photos/", {
            method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": CSRF }, body: body
          }).then(function (response) {
            return response.json().then(function (answer) {
              if (response.ok) {
                uploaded += 1;
                return photoStore("readwrite", function (store) { return store.delete(p.id); });
              }
              if (answer.code === "csrf_failed" || answer.code === "not_authenticated") {
                throw new Error(answer.message);
              }
              p.error = answer.message || "请稍后再试";
              return photoStore("readwrite", function (store) { return store.put(p); });
            });
          });
        });
      });
      return chain.then(function () { return uploaded; });
    });
  }

  function showNetwork() {
    var net = document.getElementById("net");
    net.textContent = navigator.onLine ? "在线" : "离线";
    net.className = navigator.onLine ? "net" : "net offline";
  }

  // Best effort: a position when the device gives one within a few seconds, none otherwise.
  // `fresh`: a check-in or check-out proves presence now, so it never reuses an earlier fix.
  function locate(fresh) {
    return new Promise(function (resolve) {
      if (!navigator.geolocation) {
        resolve(null);
        return;
      }
      navigator.geolocation.getCurrentPosition(
        function (p) { resolve(p.coords); },
        function () { resolve(null); },
        { enableHighAccuracy: true, timeout: 5000, maximumAge: fresh ? 0 : 60000 }
      );
    });
  }

  // Save one record on the device, with the position when the device gives one. A check-in
  // without a position proves nothing, so it is not saved at all.
  function keep(endpoint, item, needsPosition, done) {
    item.id = uuid4();
    item.occurred_at = new Date().toISOString();
    locate(needsPosition).then(function (coords) {
      if (coords) {
        item.position = { type: "Point", coordinates: [coords.longitude, coords.latitude] };
        item.crs = "wgs84";
        item.accuracy_m = Math.round(coords.accuracy * 10) / 10;
      } else if (needsPosition) {
        message.textContent = "无法获取定位，不能签到；请打开定位后重试。";
        return;
      }
      var queue = load();
      queue.push({ endpoint: endpoint, item: item });
      save(queue);
      message.textContent = "已保存在本机，待同步。";
      if (done) {
        done(item);
      }
      render();
    });
  }

  function text(data, name) {
    return String(data.get(name) || "").trim();
  }

  // An enterprise visit names the enterprise (from the embedded list of the worker's grids).
  var enterpriseField = document.getElementById("enterprise-field");
  function showEnterprise() {
    enterpriseField.hidden = form.elements.kind.value !== "enterprise";
  }
  form.elements.kind.addEventListener("change", showEnterprise);
  showEnterprise();

  // A case raised from this visit (发现问题，上报民情事项).
  var caseFields = document.getElementById("case-fields");
  function showCaseFields() {
    caseFields.hidden = !form.elements.raise_case.checked;
  }
  form.elements.raise_case.addEventListener("change", showCaseFields);
  showCaseFields();

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(form);
    var item = {
      kind: data.get("kind"),
      building: text(data, "building"),
      household: text(data, "household"),
      summary: text(data, "summary")
    };
    if (item.kind === "enterprise") {
      if (!text(data, "enterprise")) {
        message.textContent = "请选择走访的两新组织。";
        return;
      }
      item.enterprise = Number(text(data, "enterprise"));
      item.label = form.elements.enterprise.selectedOptions[0].text;
    }
    var files = Array.prototype.slice.call(form.elements.photos.files || []);
    var raise = form.elements.raise_case.checked;
    var caseItem = null;
    if (raise) {
      if (!text(data, "category") || !text(data, "case_description")) {
        message.textContent = "上报民情事项须选择事项类别并填写问题描述。";
        return;
      }
      caseItem = { category: Number(text(data, "category")), description: text(data, "case_description") };
    }
    keep("visits", item, false, function (visit) {
      var subject = { visit: visit.id };
      if (caseItem) {
        // The case stands where the visit was logged: the same position, or the visit's building.
        caseItem.id = uuid4();
        caseItem.reported_at = visit.occurred_at;
        caseItem.visit = visit.id;
        if (visit.position) {
          caseItem.position = visit.position;
          caseItem.crs = visit.crs;
          caseItem.accuracy_m = visit.accuracy_m;
        }
        var queue = load();
        queue.push({ endpoint: "cases", item: caseItem });
        save(queue);
        subject = { "case": caseItem.id };
      }
      keepPhotos(files, subject).then(function () {
        message.textContent = "已保存在本机，待同步" + (caseItem ? "（含民情事项）" : "") +
          (files.length ? "，照片 " + files.length + " 张" : "") + "。";
      }, function () {
        message.textContent = "记录已保存，但本机不能保存照片。";
      }).then(render);
      form.reset();
      showEnterprise();
      showCaseFields();
    });
  });

  // On duty (驻点在岗): after a check-in, while the page stays open, a check-in every heartbeat
  // gives the dwell time; the check-out ends it. Kept per account, so a reload stays on duty.
  var DUTY_KEY = QUEUE_KEY + ".on_duty";
  var checkOut = document.getElementById("check-out");
  var heartbeat = null;

  function onDuty(on) {
    if (on) {
      localStorage.setItem(DUTY_KEY, "1");
    } else {
      localStorage.removeItem(DUTY_KEY);
    }
    if (heartbeat) {
      clearInterval(heartbeat);
      heartbeat = null;
    }
    if (on) {
      var minutes = Number(document.getElementById("duty").dataset.heartbeatMinutes) || 15;
      heartbeat = setInterval(function () {
        keep("contacts", { kind: "check_in" }, true, function () {
          if (navigator.onLine) {
            sync();
          }
        });
      }, minutes * 60000);
    }
    if (checkIn) {
      checkIn.textContent = on ? "驻点签到（在岗中）" : "驻点签到";
    }
  }

  if (checkIn) {
    checkIn.addEventListener("click", function () {
      // Saved on the device like every record; "同步" (or the network coming back) sends it, and
      // the answer says whether it counts.
      keep("contacts", { kind: "check_in" }, true, function () { onDuty(true); });
    });
    checkOut.addEventListener("click", function () {
      keep("contacts", { kind: "check_out" }, true, function () { onDuty(false); });
    });
    onDuty(localStorage.getItem(DUTY_KEY) === "1");
  }
  if (contactForm) {
    contactForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = new FormData(contactForm);
      keep("contacts", {
        kind: contactForm.dataset.kind,
        contact_name: text(data, "contact_name"),
        building: text(data, "building"),
        summary: text(data, "summary")
      }, false, function () { contactForm.reset(); });
    });
  }

  function post(endpoint, entries) {
    return fetch(ENDPOINTS[endpoint], {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": CSRF },
      // "label" is the device's own note of what was picked (shown in the queue), not sent.
      body: JSON.stringify({ items: entries.map(function (e) {
        var item = Object.assign({}, e.item);
        delete item.label;
        return item;
      }) })
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          // A page kept from an earlier sign-in (tablet-sw.js) may carry an old CSRF token or
          // outlive its session: say what to do; the records stay on the device either way.
          if (body.code === "csrf_failed") {
            throw new Error("页面已过期，请刷新页面后再同步（记录仍保存在本机）");
          }
          if (body.code === "not_authenticated") {
            throw new Error("登录已失效，请重新登录后再同步（记录仍保存在本机）");
          }
          throw new Error(body.message || "请稍后再试");
        }
        return body;
      });
    });
  }

  function sync() {
    // Refused records wait for the worker (delete, or retry once the cause is fixed).
    var queue = load().filter(function (e) { return !e.error; });
    if (!queue.length) {
      // Photos whose records went up earlier may still be waiting (the network dropped).
      allPhotos().then(function (photos) {
        if (!photos.filter(function (p) { return !p.error; }).length) {
          message.textContent = "没有待同步的记录。";
          return;
        }
        syncButton.disabled = true;
        uploadPhotos().then(function (n) {
          message.textContent = "照片已上传 " + n + " 张。";
        }, function (error) {
          message.textContent = error instanceof TypeError ? "网络不可用，照片仍保存在本机。" : "同步失败：" + error.message;
        }).then(function () { syncButton.disabled = false; render(); });
      });
      return;
    }
    syncButton.disabled = true;
    message.textContent = "正在同步……";
    var totals = { created: 0, duplicate: 0, rejected: 0 };
    var results = {};
    var notes = [];
    var chain = Promise.resolve();
    ORDER.forEach(function (endpoint) {
      var entries = queue.filter(function (e) { return (e.endpoint || "visits") === endpoint; });
      if (!entries.length) {
        return;
      }
      chain = chain.then(function () {
        return post(endpoint, entries).then(function (body) {
          ["created", "duplicate", "rejected"].forEach(function (k) { totals[k] += body[k]; });
          body.results.forEach(function (r) {
            results[r.id] = r;
            if (r.note) {
              notes.push(r.note);  // a check-in's or check-out's presence, said to the cadre
            }
          });
        });
      });
    });
    var photosUploaded = 0;
    chain
      .then(function () {
        // The records' answers first (so photos see which records the server now holds).
        forget(results);
        return uploadPhotos().then(function (n) { photosUploaded = n; });
      })
      .then(function () {
        message.textContent = "同步完成：已保存 " + totals.created + " 条，此前已保存 " +
          totals.duplicate + " 条，未能保存 " + totals.rejected + " 条" +
          (photosUploaded ? "；照片已上传 " + photosUploaded + " 张" : "") + "。" +
          (notes.length ? " " + notes[notes.length - 1] + "。" : "");
      })
      .catch(function (error) {
        message.textContent = error instanceof TypeError
          ? "网络不可用，记录仍保存在本机，联网后再同步。"
          : "同步失败：" + error.message;
      })
      .then(function () {
        forget(results);
        syncButton.disabled = false;
        render();
      });
  }

  // Whatever the server answered for stays answered, even if a later request failed: keep what
  // it refused, with its reason; drop what it holds now.
  function forget(results) {
    save(load().filter(function (e) {
      var r = results[e.item.id];
      if (!r) {
        return true;  // not sent, or saved while the request was on its way
      }
      if (r.status === "rejected") {
        e.error = r.message;
        return true;
      }
      return false;
    }));
  }

  // Today's work (今日工作), embedded in the page so the kept page shows it offline: the buildings
  // due for a visit (nearest first once the device gives a position) on a list and a sketch, and
  // the open cases with their deadlines. The sketch is plain SVG drawn from the embedded points:
  // a tiled map would need tiles from the server, which an offline tablet does not have.
  var TODAY = JSON.parse(document.getElementById("today-data").textContent);
  var SVG_NS = "http://www.w3.org/2000/svg";

  function metres(a, b) {
    var r = Math.PI / 180;
    var dLat = (b.lat - a.lat) * r;
    var dLon = (b.lon - a.lon) * r;
    var h = Math.pow(Math.sin(dLat / 2), 2) +
      Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.pow(Math.sin(dLon / 2), 2);
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function svg(name, attrs, parent) {
    var el = document.createElementNS(SVG_NS, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    parent.appendChild(el);
    return el;
  }

  function sketch(due, me) {
    var map = document.getElementById("due-map");
    map.textContent = "";
    var points = due.slice();
    if (me) {
      points.push(me);
    }
    if (!points.length) {
      return;
    }
    var lons = points.map(function (p) { return p.lon; });
    var lats = points.map(function (p) { return p.lat; });
    var west = Math.min.apply(null, lons), east = Math.max.apply(null, lons);
    var south = Math.min.apply(null, lats), north = Math.max.apply(null, lats);
    // Equirectangular at the middle latitude: true enough over a grid's few hundred metres.
    var k = Math.cos((south + north) / 2 * Math.PI / 180);
    var w = Math.max((east - west) * k, 1e-5), h = Math.max(north - south, 1e-5);
    var scale = Math.min(280 / w, 160 / h);
    var ox = 20 + (280 - w * scale) / 2, oy = 20 + (160 - h * scale) / 2;
    function xy(p) {
      return [ox + (p.lon - west) * k * scale, oy + (north - p.lat) * scale];
    }
    if (me) {
      var here = xy(me);
      svg("circle", { cx: here[0].toFixed(1), cy: here[1].toFixed(1), r: 9, "class": "me" }, map);
      svg("text", { x: (here[0] + 8).toFixed(1), y: (here[1] + 16).toFixed(1) }, map).textContent = "我的位置";
    }
    due.forEach(function (b, i) {
      var at = xy(b);
      var dot = svg("circle", { cx: at[0].toFixed(1), cy: at[1].toFixed(1), r: 5, "class": i === 0 && me ? "due first" : "due" }, map);
      svg("title", {}, dot).textContent = b.code + " " + b.label;
      if (i < 9) {
        svg("text", { x: (at[0] + 6).toFixed(1), y: (at[1] + 3).toFixed(1) }, map).textContent = String(i + 1);
      }
    });
  }

  function showToday(me) {
    var due = TODAY.due.slice();
    if (me) {
      due.forEach(function (b) { b.distance = metres(me, b); });
      due.sort(function (a, b) { return a.distance - b.distance; });
      document.getElementById("due-hint").textContent = "已按距离由近到远排列（定位精度约 " + Math.round(me.accuracy) + " 米）。";
    }
    var ol = document.getElementById("due");
    ol.textContent = "";
    if (!due.length) {
      var none = document.createElement("li");
      none.textContent = "您负责的楼栋都已在走访周期内走访过。";
      ol.appendChild(none);
    }
    due.forEach(function (b) {
      var li = document.createElement("li");
      li.dataset.code = b.code;
      li.textContent = b.code + " " + b.label;
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = b.households + " 户 · " + (b.last_visit ? "上次走访 " + b.last_visit : "从未走访") +
        (b.distance !== undefined ? " · 约 " + (b.distance < 1000 ? Math.round(b.distance) + " 米" : (b.distance / 1000).toFixed(1) + " 公里") : "");
      li.appendChild(meta);
      // Tapping a building starts a visit to it.
      li.addEventListener("click", function () {
        form.elements.kind.value = "building";
        form.elements.building.value = b.code;
        form.scrollIntoView();
      });
      ol.appendChild(li);
    });
    sketch(due, me);
  }

  function showCases() {
    var ul = document.getElementById("cases");
    ul.textContent = "";
    if (!TODAY.cases.length) {
      var none = document.createElement("li");
      none.textContent = "暂无在办事项。";
      ul.appendChild(none);
    }
    TODAY.cases.forEach(function (c) {
      var li = document.createElement("li");
      li.dataset.id = String(c.id);
      li.className = c.overdue ? "overdue" : "";
      li.textContent = "【" + c.category + "】" + c.description;
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = c.state + " · " + (c.deadline ? "时限 " + c.deadline : "无时限") +
        (c.overdue ? " · 已超期" : "") + (c.escalated ? " · 已督办" : "") + (c.address ? " · " + c.address : "");
      li.appendChild(meta);
      ul.appendChild(li);
    });
  }

  showToday(null);
  showCases();
  if (TODAY.due.length) {
    locate().then(function (coords) {
      if (coords) {
        showToday({ lon: coords.longitude, lat: coords.latitude, accuracy: coords.accuracy });
      }
    });
  }

  // The page opens without a network once it has been opened with one (tablet-sw.js). Service
  // workers need a secure context (https, or this machine): on a plain-http intranet the page
  // still works, it just needs signal to open.
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(document.body.dataset.serviceWorker, { scope: document.body.dataset.scope })
      .catch(function () { /* the page works without it */ });
  }

  // Signing out forgets the cached page (a shared tablet shows the next person nothing of this
  // one's); the queue of unsynced records stays, under this account's key, until it signs in again.
  var signout = document.getElementById("signout");
  signout.addEventListener("submit", function (event) {
    if (!window.caches) {
      return;
    }
    event.preventDefault();
    var done = function () { signout.submit(); };
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) { return n.indexOf(document.body.dataset.cachePrefix) === 0; })
        .map(function (n) { return caches.delete(n); }));
    }).then(done, done);
  });

  syncButton.addEventListener("click", sync);
  window.addEventListener("online", function () { showNetwork(); sync(); });
  window.addEventListener("offline", showNetwork);
  showNetwork();
  render();
})();
