// The eCRF: reveal a field's reason box once its value differs from the one on the page
// (the saved value), hide it again when the value goes back. Without JavaScript the server
// asks for the reasons after the first submission, at just the changed fields.
"use strict";
(function () {
  function differs(el) {
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    if (el.tagName === "SELECT") {
      return Array.prototype.some.call(el.options, function (o) {
        return o.selected !== o.defaultSelected;
      });
    }
    return el.value !== el.defaultValue;
  }
  function update(field) {
    var box = field.querySelector(".reason");
    if (!box || box.dataset.shown === "1") return;
    var own = Array.prototype.filter.call(
      field.querySelectorAll("input, select, textarea"), function (el) {
        return !box.contains(el) && !el.closest(".conflict-choice") && el.type !== "hidden";
      });
    box.hidden = !own.some(differs);
  }
  function watch(event) {
    var field = event.target.closest && event.target.closest("form.entry .field");
    if (field) update(field);
  }
  document.addEventListener("input", watch);
  document.addEventListener("change", watch);
})();
