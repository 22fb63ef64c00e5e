// The hall wall: every second, the list of sites with a thumbnail; an <img> per site, reloaded when it changed.
(function () {
  "use strict";
  var CFG = JSON.parse(document.getElementById("lt-config").textContent);
  var base = "/api/v1/meetings/" + CFG.meeting + "/wall";
  var grid = document.getElementById("wall"), count = document.getElementById("wall-count");
  var tiles = {};

  function tile(item) {
    var fig = document.createElement("figure");
    fig.setAttribute("data-site", item.site);
    var img = document.createElement("img");
    img.alt = item.name;
    img.width = 160; img.height = 90;
    var cap = document.createElement("figcaption");
    cap.textContent = item.name + " (" + item.site + ")";
    fig.appendChild(img); fig.appendChild(cap);
    grid.appendChild(fig);
    return { fig: fig, img: img, at: null };
  }

  async function refresh() {
    try {
      var resp = await fetch(base, { cache: "no-store", credentials: "same-origin" });
      if (!resp.ok) { return; }
      var items = await resp.json();
      var seen = {};
      items.forEach(function (item) {
        seen[item.site] = true;
        var t = tiles[item.site] || (tiles[item.site] = tile(item));
        if (t.at !== item.at) {
          t.at = item.at;
          t.img.src = base + "/" + encodeURIComponent(item.site) + ".jpg?at=" + encodeURIComponent(item.at);
        }
        t.fig.classList.toggle("stale", Date.now() - Date.parse(item.at) > 10000);
      });
      Object.keys(tiles).forEach(function (site) {
        if (!seen[site]) { tiles[site].fig.remove(); delete tiles[site]; }
      });
      count.textContent = String(items.length);
      grid.setAttribute("data-count", String(items.length));
    } catch (e) { /* next second */ }
  }
  refresh();
  setInterval(refresh, 1000);
})();
