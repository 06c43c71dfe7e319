// tdb's web UI works without this script. With it, the connection test answers in place,
// without leaving the page: the form is sent as it would be, and the answer's result
// replaces this page's.
"use strict";
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-test-connection")) return;
  const result = document.getElementById("test-result");
  if (!result) return;
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  result.textContent = "Testing…";
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    });
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const answer = page.getElementById("test-result");
    result.replaceChildren(...(answer ? answer.childNodes : page.body.childNodes));
  } catch (error) {
    result.textContent = "The test could not be sent: " + error.message;
  } finally {
    button.disabled = false;
  }
});
