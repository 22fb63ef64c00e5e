// Site tree picker: search with or without Vietnamese diacritics. Plain JS, no CDN.
(function () {
  "use strict";
  function fold(s) {
    return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();
  }
  var box = document.getElementById("site-search");
  if (!box) { return; }
  var items = Array.prototype.slice.call(document.querySelectorAll(".tree li[data-name]"));
  function hit(li, q) { return fold(li.getAttribute("data-name")).indexOf(q) >= 0; }
  box.addEventListener("input", function () {
    var q = fold(box.value.trim());
    items.forEach(function (li) {
      if (q === "") { li.classList.remove("hidden"); return; }
      var show = hit(li, q);
      var up = li.parentElement && li.parentElement.closest("li[data-name]");
      while (!show && up) { show = hit(up, q); up = up.parentElement && up.parentElement.closest("li[data-name]"); }
      var kids = li.querySelectorAll("li[data-name]");
      var kidHit = false;
      for (var i = 0; i < kids.length && !kidHit; i++) { kidHit = hit(kids[i], q); }
      li.classList.toggle("hidden", !(show || kidHit));
      var det = li.querySelector(":scope > details");
      if (det) { det.open = kidHit; }
    });
  });
})();
