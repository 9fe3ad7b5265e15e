// Progressive enhancement only: every flow works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Copy buttons: data-copy names the element whose text is copied.
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var el = document.getElementById(b.getAttribute("data-copy"));
      if (!el) return;
      var text = el.value !== undefined && el.tagName === "INPUT" ? el.value : el.textContent;
      var ok = function () { var t = b.textContent; b.textContent = "Copied"; setTimeout(function () { b.textContent = t; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(ok);
      } else {
        var r = document.createRange(); r.selectNodeContents(el);
        var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
        try { document.execCommand("copy"); ok(); } catch (e) {}
      }
    });
  });
  // Live validation of a new project's name: syntax, then availability.
  document.querySelectorAll("input[data-validate-project]").forEach(function (input) {
    var out = document.getElementById("name-check");
    var re = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var v = input.value;
      if (!v) { out.textContent = ""; input.setCustomValidity(""); return; }
      if (v.length > 255 || !re.test(v)) {
        out.textContent = "Not a valid project name.";
        input.setCustomValidity("Not a valid project name.");
        return;
      }
      input.setCustomValidity("");
      timer = setTimeout(function () {
        fetch("/api/v2.0/projects?project_name=" + encodeURIComponent(v), { method: "HEAD", credentials: "same-origin" })
          .then(function (r) {
            if (input.value !== v) return;
            if (r.status === 200) { out.textContent = "A project named " + v + " already exists."; input.setCustomValidity("Name taken."); }
            else if (r.status === 404) { out.textContent = "The name is available."; }
          })
          .catch(function () {});
      }, 250);
    });
  });
  // Forms that ask before they act (the server asks again without JS).
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
});
