// The few things the pages do in the browser: ask before a delete, and check and replay the
// subscription being edited as it is typed (the server parses and renders; this only asks).
"use strict";

document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

const editor = document.getElementById("subscription");
if (editor) {
  const backtest = document.getElementById("backtest");
  const state = document.getElementById("backtest-state");
  let timer = null;
  let asked = 0;

  const show = (field, problem) => {
    const place = document.getElementById(field + "-problem");
    if (!place) return;
    place.textContent = problem || "";
    place.hidden = !problem;
  };

  const preview = async () => {
    const number = ++asked;
    state.textContent = "updating…";
    let reply;
    try {
      reply = await fetch("/ui/preview", {
        method: "POST",
        body: new URLSearchParams(new FormData(editor)),
        credentials: "same-origin",
      });
    } catch (error) {
      if (number === asked) state.textContent = "could not reach the server";
      return;
    }
    if (number !== asked) return; // a later keystroke has asked again
    if (reply.redirected) { window.location.assign(reply.url); return; }
    if (!reply.ok) { state.textContent = "refused (" + reply.status + ")"; return; }
    const answer = await reply.json();
    for (const field of ["query", "filter", "policy"]) show(field, answer.problems[field]);
    if (answer.html) {
      backtest.innerHTML = answer.html; // rendered and escaped by the server
      state.textContent = "";
    } else {
      state.textContent = Object.keys(answer.problems).length ? "waiting for a query that parses" : "";
    }
  };

  editor.addEventListener("input", (event) => {
    if (!event.target.hasAttribute("data-preview")) return;
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  });
}
