// Progressive enhancement for the questionnaire pages (a static file: the CSP allows no inline script).
// Each answer is saved on the server as soon as it is chosen, and branching questions are shown or hidden as the
// answers they depend on change. Without JavaScript the form still works: answers are saved per page.
(function () {
  "use strict";
  var form = document.getElementById("instrument-form");
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
  if (!form) { return; }
  var status = document.getElementById("save-status");
  var url = form.getAttribute("data-autosave-url");
  var pending = null;

  function applyBranching() {
    var dependent = form.querySelectorAll("[data-show-if-item]");
    dependent.forEach(function (fs) {
      var source = form.querySelector('input[name="' + fs.getAttribute("data-show-if-item") + '"]:checked');
      var parent = document.getElementById("q-" + fs.getAttribute("data-show-if-item"));
      var show = source && source.value === fs.getAttribute("data-show-if-equals") && parent && !parent.hidden;
      fs.hidden = !show;
      fs.querySelectorAll("input").forEach(function (input) {
        input.disabled = !show;
        if (!show) { input.checked = false; }
      });
    });
  }

  function save() {
    var data = new FormData(form);
    data.delete("action");
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]');
    return fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "" }
    }).then(function (r) {
      if (status) { status.textContent = r.ok ? status.getAttribute("data-saved") || "\u2713" : ""; }
      form.setAttribute("data-saved-count", String(Number(form.getAttribute("data-saved-count") || "0") + 1));
    }).catch(function () { if (status) { status.textContent = ""; } });
  }

  form.addEventListener("change", function () {
    applyBranching();
    pending = save();
  });
  applyBranching();
})();
