// Idle screens blank (§11.1.2.4): after data-idle-seconds without input the page hides its
// content behind a notice, so clinical data is not left on an unattended screen; any input
// shows it again. Without JavaScript the idle session timeout (EDC_IDLE_TIMEOUT_MINUTES) ends
// the session instead.
(function () {
  var me = document.currentScript;
  var seconds = Number(me && me.dataset.idleSeconds);
  if (!seconds) return;
  var timer = null;
  function blank() { document.body.classList.add("idle-blank"); }
  function wake() {
    if (!document.body) return;
    document.body.classList.remove("idle-blank");
    clearTimeout(timer);
    timer = setTimeout(blank, seconds * 1000);
  }
  ["mousemove", "mousedown", "keydown", "touchstart", "wheel", "scroll"].forEach(function (e) {
    window.addEventListener(e, wake, { passive: true, capture: true });
  });
  document.addEventListener("DOMContentLoaded", function () {
    var notice = document.createElement("div");
    notice.id = "idle-notice";
    notice.setAttribute("role", "status");
    notice.textContent = "屏幕已隐藏：请移动鼠标或按任意键继续 / " +
      "Screen blanked while idle: move the mouse or press a key to continue";
    document.body.appendChild(notice);
    wake();
  });
})();
