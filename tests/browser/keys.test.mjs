// Keys in headless Chromium against the real `keymanager dev` binary: the first administrator
// creates an EC P-256 signing key through the wizard (only EC's curves show, the usages follow
// the algorithm), finds it active on its page, suspends and reactivates it, deactivates it,
// schedules its destruction with a reason (the page shows when it is due) and cancels it — every
// change through the confirmation dialog — and finds it in the list with its state's badge.
// Screenshots (wizard, detail, list, dark detail) go to tests/artifacts/browser/.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { launchChromium } from "./lib/browser.mjs";
import { repoRoot, startKeymanager } from "./lib/keymanager.mjs";

const ARTIFACTS = path.join(repoRoot, "tests", "artifacts", "browser");
const ADMIN = { username: "kim", name: "Kim Keys", password: "keys of the kingdom 2026" };
const LABEL = "web-signing";

describe("keys in headless Chromium", () => {
  let km;
  let browser;
  let page;
  const problems = [];

  async function shot(name) {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async function state() {
    return (await page.textContent("[data-testid=key-facts] [data-testid=key-state]")).trim();
  }

  /** Clicks a lifecycle action, confirms in the dialog, and waits for the key's page again. */
  async function act(event, reason) {
    if (reason) await page.fill(`[data-testid=reason-${event}]`, reason);
    await page.click(`[data-testid=action-${event}]`);
    const dialog = page.locator("#confirm-dialog");
    await dialog.waitFor({ state: "visible" });
    await Promise.all([page.waitForURL(new RegExp(`/keys/${LABEL}\\?done=`)), dialog.locator("[data-confirm-ok]").click()]);
    await page.waitForSelector("[data-testid=key-facts]");
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    km = await startKeymanager();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: "light" });
    page = await context.newPage();
    page.on("console", (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  });

  after(async () => {
    await browser?.close();
    await km?.stop();
  });

  it("sets up the first administrator, who finds Keys in the partition section", async () => {
    await page.goto(`${km.url}/setup`);
    await page.fill("#token", km.setupToken);
    await page.fill("#username", ADMIN.username);
    await page.fill("#display_name", ADMIN.name);
    await page.fill("#password", ADMIN.password);
    await page.fill("#password_confirm", ADMIN.password);
    await Promise.all([page.waitForURL(/\/account\/totp/), page.click("[data-testid=setup-form] button[type=submit]")]);
    await page.goto(`${km.url}/`);
    await Promise.all([page.waitForURL(/\/keys$/), page.click("[data-nav=keys]")]);
    await page.waitForSelector("[data-testid=create-key]");
  });

  it("creates an EC P-256 signing key through the wizard", async () => {
    await Promise.all([page.waitForURL(/\/keys\/new$/), page.click("[data-testid=create-key]")]);
    await page.fill("#label", LABEL);
    await page.selectOption("#algorithm", "AES");
    assert.equal(await page.isVisible("#param_AES"), true, "AES sizes show for AES");
    assert.equal(await page.isVisible("#param_EC"), false, "EC curves hide for AES");
    assert.equal(await page.isChecked("input[name=usage][value=encrypt]"), true, "AES defaults to encryption");
    assert.equal(await page.isVisible("[data-usage=sign]"), false, "AES cannot sign");
    await page.selectOption("#algorithm", "EC");
    assert.equal(await page.isVisible("#param_EC"), true);
    assert.equal(await page.isVisible("#param_AES"), false);
    await page.selectOption("#param_EC", "secp256r1");
    assert.equal(await page.isChecked("input[name=usage][value=sign]"), true, "EC defaults to signing");
    assert.equal(await page.isChecked("input[name=extractable]"), false);
    assert.equal(await page.isChecked("input[name=destroyable]"), true);
    await page.fill("#owner", "team-web");
    await page.fill("#tags", "web, prod");
    await page.fill("#description", "Signs the web tier's session tokens.");
    await shot("38-key-wizard");
    await Promise.all([page.waitForURL(new RegExp(`/keys/${LABEL}\\?done=key_created`)), page.click("[data-testid=create-key-submit]")]);
    assert.match(await page.textContent("main .alert-success"), /Key created/);
    assert.equal(await state(), "active");
    assert.match(await page.textContent("[data-testid=key-facts]"), /EC secp256r1/);
    assert.equal(await page.locator("[data-testid=action-activate]").count(), 0, "an active key is not activated again");
  });

  it("suspends and reactivates the key, each after a confirmation", async () => {
    await act("suspend");
    assert.equal(await state(), "suspended");
    assert.match(await page.textContent("main .alert-success"), /Key suspended/);
    await act("reactivate");
    assert.equal(await state(), "active");
    await shot("39-key-detail");
  });

  it("schedules destruction with a reason (after deactivation) and cancels it", async () => {
    await act("deactivate");
    assert.equal(await state(), "deactivated");
    await act("schedule_destruction", "replaced by web-signing-2");
    assert.equal(await state(), "destroy-scheduled");
    const due = (await page.textContent("[data-testid=destruction-at]")).trim();
    assert.match(due, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/, due);
    assert.match(await page.textContent("[data-testid=key-history]"), /replaced by web-signing-2/);
    await act("cancel_destruction");
    assert.equal(await state(), "deactivated", "back to the state it was scheduled from");
    assert.equal(await page.locator("[data-testid=destruction-at]").count(), 0);
  });

  it("lists the key with its state's badge, in light and dark", async () => {
    await Promise.all([page.waitForURL(/\/keys$/), page.click("[data-nav=keys]")]);
    const row = page.locator(`tr[data-label="${LABEL}"]`);
    assert.equal(await row.count(), 1);
    assert.equal(await row.getAttribute("data-state"), "deactivated");
    assert.match(await row.locator(".badge-state-deactivated").textContent(), /deactivated/);
    assert.match(await row.textContent(), /EC secp256r1[\s\S]*managed[\s\S]*web/);
    await shot("40-keys-list");
    await page.emulateMedia({ colorScheme: "dark" });
    await Promise.all([page.waitForURL(new RegExp(`/keys/${LABEL}$`)), row.locator("a").click()]);
    await shot("41-key-detail-dark");
    await page.emulateMedia({ colorScheme: "light" });
    assert.deepEqual(problems, [], "no CSP violations or page errors");
  });
});
