// Applies the saved colour theme before the first paint (loaded synchronously in <head>, so the
// page never flashes the wrong theme). No choice saved = follow the operating system.
(function () {
  try {
    var saved = window.localStorage.getItem("km-theme");
    if (saved === "light" || saved === "dark") {
      document.documentElement.setAttribute("data-theme", saved);
    }
  } catch (_) {
    // Storage may be disabled; the OS preference still applies.
  }
})();
