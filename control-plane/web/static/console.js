// keymanager console behaviour: progressive enhancement only. Every page works without this file
// (forms post, filters have a server-side fallback); it adds the theme toggle, instant table
// filters, confirmation dialogs for destructive actions, copy buttons, the custom colour of
// the partition colour picker, the single-sign-on provider form's issuer preview and
// "Add rule" button, and the key wizard's usage choices.

const root = document.documentElement;

function currentTheme() {
  const explicit = root.getAttribute("data-theme");
  if (explicit === "light" || explicit === "dark") return explicit;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function initThemeToggle() {
  for (const button of document.querySelectorAll("[data-theme-toggle]")) {
    const sync = () => {
      const theme = currentTheme();
      button.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
      button.setAttribute("title", theme === "dark" ? "Switch to light theme" : "Switch to dark theme");
    };
    sync();
    button.hidden = false;
    button.addEventListener("click", () => {
      const next = currentTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { window.localStorage.setItem("km-theme", next); } catch (_) { /* ignore */ }
      sync();
    });
  }
}

// <input data-filter-table="ID"> and <select data-filter-table="ID" data-filter-column="role">
// filter the rows of table#ID. Text inputs match the row's text; selects match the row's
// data-<column> attribute. An empty-state row (data-filter-empty) shows when nothing matches.
function initTableFilters() {
  const tables = new Set();
  for (const control of document.querySelectorAll("[data-filter-table]")) {
    tables.add(control.getAttribute("data-filter-table"));
  }
  for (const id of tables) {
    const table = document.getElementById(id);
    if (!table) continue;
    const controls = document.querySelectorAll(`[data-filter-table="${id}"]`);
    const rows = Array.from(table.querySelectorAll("tbody tr[data-row]"));
    const empty = table.querySelector("tbody tr[data-filter-empty]");
    const counter = document.querySelector(`[data-filter-count="${id}"]`);
    const apply = () => {
      let shown = 0;
      for (const row of rows) {
        let visible = true;
        for (const control of controls) {
          const value = control.value.trim().toLowerCase();
          if (!value) continue;
          const column = control.getAttribute("data-filter-column");
          if (column) {
            if ((row.getAttribute(`data-${column}`) || "").toLowerCase() !== value) visible = false;
          } else if (!row.textContent.toLowerCase().includes(value)) {
            visible = false;
          }
        }
        row.hidden = !visible;
        if (visible) shown += 1;
      }
      if (empty) empty.hidden = shown !== 0;
      if (counter) counter.textContent = `${shown} of ${rows.length}`;
    };
    for (const control of controls) {
      control.addEventListener("input", apply);
      control.addEventListener("change", apply);
      // The server-side fallback submits the filter form; with JS the filter is instant.
      control.form?.addEventListener("submit", (event) => { event.preventDefault(); apply(); });
    }
    apply();
  }
}

// <form data-confirm="Delete alice?" data-confirm-detail="..." data-confirm-action="Delete">
// asks in an accessible <dialog> before submitting.
function initConfirmations() {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  const title = dialog.querySelector("[data-confirm-title]");
  const detail = dialog.querySelector("[data-confirm-detail]");
  const ok = dialog.querySelector("[data-confirm-ok]");
  const cancel = dialog.querySelector("[data-confirm-cancel]");
  let pending = null;
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.confirmed === "yes") return;
      event.preventDefault();
      pending = { form, submitter: event.submitter };
      title.textContent = form.getAttribute("data-confirm");
      detail.textContent = form.getAttribute("data-confirm-detail") || "This cannot be undone.";
      ok.textContent = form.getAttribute("data-confirm-action") || "Confirm";
      dialog.showModal();
      cancel.focus();
    });
  }
  cancel.addEventListener("click", () => { pending = null; dialog.close(); });
  ok.addEventListener("click", () => {
    dialog.close();
    if (!pending) return;
    pending.form.dataset.confirmed = "yes";
    pending.form.requestSubmit(pending.submitter || undefined);
    pending = null;
  });
}

// <button data-copy="#selector"> copies the target's text.
function initCopyButtons() {
  for (const button of document.querySelectorAll("[data-copy]")) {
    const target = document.querySelector(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(target.textContent.trim());
        const label = button.getAttribute("data-copy-label") || button.textContent;
        button.setAttribute("data-copy-label", label);
        button.textContent = "Copied";
        setTimeout(() => { button.textContent = label; }, 1500);
      } catch (_) { /* clipboard refused: the text stays selectable */ }
    });
  }
}

// Inputs with data-autosubmit submit their form on change (the partition switcher's <select>
// for example), keeping an explicit submit button for keyboard users without JS.
function initAutoSubmit() {
  for (const input of document.querySelectorAll("[data-autosubmit]")) {
    input.addEventListener("change", () => input.form?.requestSubmit());
  }
}

// <input type=color data-colour-custom="RADIO-ID">: picking a custom colour selects its radio.
function initCustomColours() {
  for (const input of document.querySelectorAll("[data-colour-custom]")) {
    const radio = document.getElementById(input.getAttribute("data-colour-custom"));
    if (!radio) continue;
    const select = () => { radio.checked = true; };
    input.addEventListener("input", select);
    input.addEventListener("click", select);
  }
}

// The provider form: <output data-issuer-preview> shows the issuer that the Entra ID directory
// id or the Keycloak base URL and realm build (the server builds the same one on save).
function initIssuerPreview() {
  for (const form of document.querySelectorAll("form.provider-form")) {
    const output = form.querySelector("[data-issuer-preview]");
    if (!output) continue;
    const value = (name) => (form.elements.namedItem(name)?.value || "").trim();
    const update = () => {
      const kind = form.querySelector('input[name="kind"]:checked')?.value;
      let issuer = "";
      if (kind === "entra_id" && value("entra_tenant")) {
        issuer = `https://login.microsoftonline.com/${value("entra_tenant")}/v2.0`;
      } else if (kind === "keycloak" && value("keycloak_base") && value("keycloak_realm")) {
        issuer = `${value("keycloak_base").replace(/\/+$/, "")}/realms/${value("keycloak_realm")}`;
      }
      output.textContent = issuer;
    };
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    update();
  }
}

// The mapping table: [data-add-rule] appends a copy of <template data-rule-template>, whose
// field names carry __index__ (replaced by the next free row number). Without JavaScript the
// server offers a few empty rows instead.
function initRuleRows() {
  for (const button of document.querySelectorAll("[data-add-rule]")) {
    const form = button.closest("form");
    const template = form?.querySelector("template[data-rule-template]");
    const rows = form?.querySelector("[data-rule-rows]");
    if (!template || !rows) continue;
    button.hidden = false;
    button.addEventListener("click", () => {
      let next = 0;
      for (const field of rows.querySelectorAll("[name^=rule_value_]")) {
        next = Math.max(next, Number(field.name.slice("rule_value_".length)) + 1);
      }
      const number = rows.querySelectorAll("tr").length + 1;
      const html = template.innerHTML.replaceAll("__index__", String(next)).replaceAll("rule new", `rule ${number}`);
      rows.insertAdjacentHTML("beforeend", html);
      rows.lastElementChild?.querySelector("[name^=rule_value_]")?.focus();
    });
  }
}

// The key wizard (form[data-key-wizard]): CSS already shows only the chosen algorithm's size or
// curve; this hides the usages the algorithm cannot do (each <option> lists them in
// data-usages) and, when the algorithm changes, ticks its family's default usage.
function initKeyWizard() {
  for (const form of document.querySelectorAll("form[data-key-wizard]")) {
    const select = form.querySelector("[data-algorithm-select]");
    if (!select) continue;
    const sync = (reset) => {
      const option = select.selectedOptions[0];
      if (!option) return;
      const usages = (option.getAttribute("data-usages") || "").split(" ");
      for (const section of form.querySelectorAll("[data-param]")) {
        section.hidden = section.getAttribute("data-param") !== option.value;
      }
      for (const choice of form.querySelectorAll("[data-usage]")) {
        const usage = choice.getAttribute("data-usage");
        const input = choice.querySelector("input");
        const supported = usages.includes(usage);
        choice.hidden = !supported;
        if (!supported) input.checked = false;
        if (reset) input.checked = usage === option.getAttribute("data-default-usage");
      }
    };
    select.addEventListener("change", () => sync(true));
    sync(false);
  }
}

initThemeToggle();
initTableFilters();
initConfirmations();
initCopyButtons();
initAutoSubmit();
initCustomColours();
initIssuerPreview();
initRuleRows();
initKeyWizard();
