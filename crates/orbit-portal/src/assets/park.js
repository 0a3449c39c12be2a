// Ask before a delete button submits its form.
document.addEventListener("submit", function (e) {
  var b = e.target.querySelector("button.confirm");
  if (b && !window.confirm("Delete this? It cannot be undone.")) e.preventDefault();
});

// Music on hold: the WAV file goes up as the request body; the server
// checks it and any refusal shows next to the field.
(function () {
  var f = document.getElementById("music-upload");
  if (!f) return;
  f.addEventListener("submit", function (e) {
    e.preventDefault();
    var file = document.getElementById("f-music").files[0];
    var err = f.querySelector(".error");
    err.hidden = true;
    fetch(f.dataset.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": f.dataset.csrf, "Content-Type": "audio/wav" },
      body: file || new Blob([]),
    })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (x) {
        if (x.ok) { window.location.reload(); return; }
        err.textContent = x.j.message; err.hidden = false;
      })
      .catch(function () { err.textContent = "upload failed"; err.hidden = false; });
  });
})();
