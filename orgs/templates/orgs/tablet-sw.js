// Service worker of the tablet page (/tablet/): the page opens without a network.
//
// A grid worker often starts the day where there is no signal. The page itself (with the
// buildings the worker may pick) and its static files (script, style, icon) are kept in the browser's cache: the
// page is fetched from the server whenever there is a network and served from the cache when
// there is not. Everything else (the sync API) goes to the network untouched: records wait in
// the page's own queue (tablet.js), never in this worker.
//
// The cache name carries the static files' hashed names, so a new deployment installs a new
// worker and drops the old cache. Signing out (tablet.js) deletes the cache: the next person on
// a shared tablet never sees the previous one's page.
"use strict";

var PREFIX = "{{ cache_prefix|escapejs }}";
var CACHE = PREFIX + "{{ version }}";
var PAGE = "{{ page_url|escapejs }}";
var ASSETS = {{ assets|safe }};

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(CACHE).then(function (cache) {
      // The page is fetched with the session cookie, as the worker's own request; a signed-out
      // visitor gets a redirect, which is not kept (see keepPage).
      return cache.addAll(ASSETS).then(function () {
        return fetch(PAGE, { credentials: "same-origin" }).then(function (r) { return keepPage(cache, r); });
      });
    }).then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) {
        return n.indexOf(PREFIX) === 0 && n !== CACHE;
      }).map(function (n) { return caches.delete(n); }));
    }).then(function () { return self.clients.claim(); })
  );
});

// Only the signed-in page itself: not a redirect to the sign-in form, not an error page.
function keepPage(cache, response) {
  if (response.ok && !response.redirected && response.type === "basic") {
    return cache.put(PAGE, response.clone());
  }
  return Promise.resolve();
}

function offlinePage() {
  return new Response(
    "<!DOCTYPE html><html lang=\"zh-hans\"><meta charset=\"utf-8\">" +
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" +
    "<title>走访记录 · 网格通</title><body style=\"font:18px sans-serif;padding:2em\">" +
    "<h1>暂时无法打开走访记录</h1><p>本机没有网络，也没有保存过本页。请联网后登录并打开一次本页，" +
    "之后没有网络也能使用。</p></body></html>",
    { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } }
  );
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") {
    return;
  }
  var url = new URL(request.url);
  if (request.mode === "navigate" && url.origin === self.location.origin && url.pathname === PAGE) {
    // Network first: a page opened with signal is always current (buildings, CSRF token).
    event.respondWith(
      fetch(request).then(function (response) {
        return caches.open(CACHE).then(function (cache) {
          return keepPage(cache, response);
        }).then(function () { return response; });
      }).catch(function () {
        return caches.match(PAGE).then(function (cached) { return cached || offlinePage(); });
      })
    );
  } else if (ASSETS.indexOf(url.pathname) !== -1) {
    // Static files have hashed names: what is cached never goes stale.
    event.respondWith(caches.match(request).then(function (cached) { return cached || fetch(request); }));
  }
});
