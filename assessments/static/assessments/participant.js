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
  var problem = document.getElementById("save-problem");
  var error = document.getElementById("save-error");
  var retry = document.getElementById("save-retry");
  var answered = document.getElementById("answered");
  var bar = document.getElementById("answered-bar");
  var url = form.getAttribute("data-autosave-url");
  var pending = null;
  // Every save posts the whole screen, so the outcome of the latest save is the state of every answer on it: an
  // older save that fails after a newer one succeeded lost nothing, and must not show the message.
  var latest = 0;
  var failing = false;

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

  // "12 of 48 answered" over the whole link: the server sends the counts outside this screen, the page adds its own.
  function updateProgress() {
    if (!answered) { return; }
    var done = Number(answered.getAttribute("data-answered-elsewhere") || "0");
    var total = Number(answered.getAttribute("data-items-elsewhere") || "0");
    form.querySelectorAll("fieldset.question").forEach(function (fs) {
      if (fs.hidden) { return; }
      total += 1;
      if (fs.querySelector("input:checked")) { done += 1; }
    });
    var template = answered.getAttribute("data-template");
    if (template) {
      answered.textContent = template.replace("{answered}", String(done)).replace("{total}", String(total));
    }
    if (bar) { bar.max = total; bar.value = done; }
  }

  function showFailure() {
    failing = true;
    if (status) { status.textContent = ""; }
    if (error) { error.textContent = error.getAttribute("data-message") || ""; }
    if (retry) { retry.hidden = false; }
    if (problem) { problem.classList.add("is-shown"); }
    document.body.classList.add("save-failing");
  }

  function clearFailure() {
    failing = false;
    if (error) { error.textContent = ""; }
    if (retry) { retry.hidden = true; }
    if (problem) { problem.classList.remove("is-shown"); }
    document.body.classList.remove("save-failing");
  }

  function save() {
    var data = new FormData(form);
    data.delete("action");
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]');
    latest += 1;
    var mine = latest;
    return fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "" }
    }).then(function (r) {
      if (mine === latest) {
        if (r.ok) {
          clearFailure();
          if (status) { status.textContent = status.getAttribute("data-saved") || "\u2713"; }
        } else {
          showFailure();
        }
      }
      form.setAttribute("data-saved-count", String(Number(form.getAttribute("data-saved-count") || "0") + 1));
    }).catch(function () {
      // Offline, or the request never reached the server: the answer stays chosen on the page for a retry.
      if (mine === latest) { showFailure(); }
      form.setAttribute("data-failed-count", String(Number(form.getAttribute("data-failed-count") || "0") + 1));
    });
  }

  form.addEventListener("change", function () {
    applyBranching();
    updateProgress();
    pending = save();
  });
  if (retry) {
    retry.addEventListener("click", function () { pending = save(); });
  }
  window.addEventListener("online", function () {
    if (failing) { pending = save(); }
  });
  applyBranching();
  updateProgress();
})();
