// The tenant dashboard in headless Chromium against the real `keymanager dev` binary: the first
// administrator opens the dashboard of an empty partition (its TSB's version, licence flags and
// keystore statistics, and the "nothing due" empty state), creates three keys through the REST API
// with the console session (one expiring in 10 days, one in 40 days, one deactivated and scheduled
// for destruction), then finds the counts by state and algorithm and the two events due within 30
// days on the dashboard, and the alert banner on the keys list and the overview linking to it.
// Screenshots (dashboard light and dark, the alert on /keys) go to tests/artifacts/browser/.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { launchChromium } from "./lib/browser.mjs";
import { repoRoot, startKeymanager } from "./lib/keymanager.mjs";

const ARTIFACTS = path.join(repoRoot, "tests", "artifacts", "browser");
const ADMIN = { username: "dana", name: "Dana Dash", password: "dashboards at dawn 2026" };
const DAY = 24 * 60 * 60;

describe("the tenant dashboard in headless Chromium", () => {
  let km;
  let browser;
  let page;
  let tenant;
  const problems = [];

  async function shot(name) {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  /** A REST call with the console's session cookie and its CSRF token. */
  async function api(method, url, data) {
    const csrf = await page.getAttribute("form[action='/logout'] input[name=csrf]", "value");
    const response = await page.request.fetch(`${km.url}/api/v1${url}`, {
      method,
      headers: { "x-csrf-token": csrf },
      data,
    });
    const body = await response.json();
    assert.ok(response.ok(), `${method} ${url}: ${response.status()} ${JSON.stringify(body)}`);
    return body;
  }

  async function rowCount(section, attribute, value) {
    return page.getAttribute(`[data-testid=${section}] tr[${attribute}="${value}"]`, "data-count");
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

  it("sets up the first administrator, who opens the dashboard from the partition section", async () => {
    await page.goto(`${km.url}/setup`);
    await page.fill("#token", km.setupToken);
    await page.fill("#username", ADMIN.username);
    await page.fill("#display_name", ADMIN.name);
    await page.fill("#password", ADMIN.password);
    await page.fill("#password_confirm", ADMIN.password);
    await Promise.all([page.waitForURL(/\/account\/totp/), page.click("[data-testid=setup-form] button[type=submit]")]);
    await page.goto(`${km.url}/`);
    const nav = await page.$$eval("nav.nav a", (links) => links.map((a) => a.dataset.nav));
    assert.ok(nav.indexOf("dashboard") >= 0 && nav.indexOf("dashboard") === nav.indexOf("keys") - 1, `nav: ${nav}`);
    assert.equal(await page.locator("[data-testid=expiry-alert]").count(), 0, "nothing is due yet");
    await Promise.all([page.waitForURL(/\/dashboard$/), page.click("[data-nav=dashboard]")]);
    assert.equal(await page.getAttribute("[data-nav=dashboard]", "aria-current"), "page");
    tenant = await page.getAttribute("[data-testid=dashboard-partition]", "data-partition-id");
    assert.ok(tenant, "the dashboard names its partition");
  });

  it("shows the partition's TSB and the empty state of an empty partition", async () => {
    assert.match(await page.textContent("[data-testid=tsb-version]"), /emulator/);
    const licences = await page.locator("[data-testid=licences] .badge").allTextContents();
    assert.ok(licences.includes("REST_API"), `licences: ${licences}`);
    assert.match(await page.textContent("[data-testid=keystore-statistics]"), /Private keys/);
    assert.equal((await page.textContent("[data-testid=stat-total] .stat-value")).trim(), "0");
    assert.equal(await page.isVisible("[data-testid=dashboard-upcoming-empty]"), true);
    assert.equal(await page.isVisible("[data-testid=dashboard-keys-empty]"), true);
    assert.equal(await page.locator("[data-testid=dashboard-hsm-error]").count(), 0);
  });

  it("counts the keys and lists what falls due within 30 days", async () => {
    const now = Math.floor(Date.now() / 1000);
    await api("POST", `/tenants/${tenant}/keys`, {
      label: "web-signing", algorithm: "EC", curve: "P-256", owner: "team-web",
      attributes: { sign: true, verify: true }, expires_at: now + 10 * DAY,
    });
    await api("POST", `/tenants/${tenant}/keys`, {
      label: "archive", algorithm: "AES", key_size: 256,
      attributes: { encrypt: true, decrypt: true }, expires_at: now + 40 * DAY,
    });
    await api("POST", `/tenants/${tenant}/keys`, {
      label: "retired", algorithm: "EC", curve: "P-256", attributes: { sign: true, verify: true },
    });
    await api("POST", `/tenants/${tenant}/keys/retired/lifecycle`, { event: "deactivate", reason: "replaced" });
    const scheduled = await api("POST", `/tenants/${tenant}/keys/retired/lifecycle`, {
      event: "schedule_destruction", reason: "replaced by web-signing",
    });
    assert.equal(scheduled.state, "destroy-scheduled");

    await page.goto(`${km.url}/dashboard`);
    assert.equal((await page.textContent("[data-testid=stat-total] .stat-value")).trim(), "3");
    assert.equal((await page.textContent("[data-testid=stat-upcoming] .stat-value")).trim(), "2");
    assert.equal(await rowCount("dashboard-by-state", "data-state", "active"), "2");
    assert.equal(await rowCount("dashboard-by-state", "data-state", "destroy-scheduled"), "1");
    assert.equal(await rowCount("dashboard-by-state", "data-state", "suspended"), "0");
    assert.match(
      await page.textContent("[data-testid=dashboard-by-state] tr[data-state=active] .badge-state-active"),
      /active/,
    );
    assert.equal(await rowCount("dashboard-by-algorithm", "data-algorithm", "EC"), "2");
    assert.equal(await rowCount("dashboard-by-algorithm", "data-algorithm", "AES"), "1");

    const rows = page.locator("[data-testid=dashboard-upcoming] tbody tr");
    assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => [tr.dataset.label, tr.dataset.kind])), [
      ["retired", "destruction"],
      ["web-signing", "expiry"],
    ]);
    const signing = page.locator("[data-testid=dashboard-upcoming] tr[data-label=web-signing]");
    assert.match(await signing.locator("[data-testid=upcoming-relative]").textContent(), /^in (9|10) days$/);
    assert.match(await signing.textContent(), /team-web/);
    assert.equal(await signing.locator("a").getAttribute("href"), "/keys/web-signing");
    const retired = page.locator("[data-testid=dashboard-upcoming] tr[data-label=retired]");
    assert.match(await retired.locator("[data-testid=upcoming-relative]").textContent(), /^in [67] days$/);
    assert.match(await retired.textContent(), /\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    await shot("42-dashboard");
    await page.emulateMedia({ colorScheme: "dark" });
    await shot("43-dashboard-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("alerts on the keys list and the overview, linking to the dashboard", async () => {
    await Promise.all([page.waitForURL(/\/keys$/), page.click("[data-nav=keys]")]);
    const alert = page.locator("[data-testid=expiry-alert]");
    assert.match(await alert.textContent(), /2 keys expire or are destroyed within 30 days/);
    await shot("44-keys-expiry-alert");
    await Promise.all([page.waitForURL(/\/dashboard$/), alert.locator("a[href='/dashboard']").click()]);
    await page.goto(`${km.url}/`);
    assert.match(await page.textContent("[data-testid=expiry-alert]"), /2 keys expire or are destroyed/);
    await page.goto(`${km.url}/dashboard`);
    await Promise.all([
      page.waitForURL(/\/keys\/web-signing$/),
      page.click("[data-testid=dashboard-upcoming] tr[data-label=web-signing] a"),
    ]);
    assert.deepEqual(problems, [], "no CSP violations or page errors");
  });
});
