// Expiry notifications in headless Chromium against the real `keymanager dev` binary (which allows
// http:// webhooks to loopback hosts) and a real HTTP receiver on 127.0.0.1 in this process: the
// first administrator opens Notifications from the partition section, switches notices on with
// the receiver's URL and gets the signing secret once (gone after a reload), sends a test delivery
// whose signature the receiver verifies with node:crypto, generates a new secret through the
// confirmation dialog, and finally receives the scheduler's signed notice for a key that expires
// in 10 days. Screenshots go to tests/artifacts/browser/.

import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { launchChromium } from "./lib/browser.mjs";
import { repoRoot, startKeymanager } from "./lib/keymanager.mjs";

const ARTIFACTS = path.join(repoRoot, "tests", "artifacts", "browser");
const ADMIN = { username: "nora", name: "Nora Notices", password: "notices before expiry 2026" };
const DAY = 24 * 60 * 60;

/** Whether `Keymanager-Signature` (`t=<unix>,v1=<hex>`) is the HMAC-SHA256 of `<t>.<body>`. */
function signatureValid(delivery, secret) {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(delivery.headers["keymanager-signature"] ?? "");
  if (!match) return false;
  const expected = createHmac("sha256", secret).update(`${match[1]}.`).update(delivery.body).digest();
  return timingSafeEqual(expected, Buffer.from(match[2], "hex"));
}

describe("expiry notifications in headless Chromium", () => {
  let km;
  let browser;
  let page;
  let receiver;
  let receiverUrl;
  let tenant;
  let secret;
  const deliveries = [];
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

  /** Waits for a delivery of `type`, polling the receiver. */
  async function delivery(type, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = deliveries.find((d) => JSON.parse(d.body.toString("utf8")).type === type);
      if (found) return found;
      assert.ok(Date.now() < deadline, `no ${type} delivery within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    receiver = createServer((req, res) => {
      const chunks = [];
      req.on("data", (chunk) => chunks.push(chunk));
      req.on("end", () => {
        deliveries.push({ headers: req.headers, body: Buffer.concat(chunks) });
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    receiverUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
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
    await new Promise((resolve) => (receiver ? receiver.close(resolve) : resolve()));
  });

  it("sets up the first administrator, who opens Notifications from the partition section", async () => {
    await page.goto(`${km.url}/setup`);
    await page.fill("#token", km.setupToken);
    await page.fill("#username", ADMIN.username);
    await page.fill("#display_name", ADMIN.name);
    await page.fill("#password", ADMIN.password);
    await page.fill("#password_confirm", ADMIN.password);
    await Promise.all([page.waitForURL(/\/account\/totp/), page.click("[data-testid=setup-form] button[type=submit]")]);
    await page.goto(`${km.url}/`);
    await Promise.all([page.waitForURL(/\/settings\/notifications$/), page.click("[data-nav=notifications]")]);
    assert.equal(await page.getAttribute("[data-nav=notifications]", "aria-current"), "page");
    assert.equal((await page.textContent("[data-testid=notifications-status]")).trim(), "off");
    assert.equal(await page.inputValue("[data-testid=notifications-lead-days]"), "30, 7, 1");
    assert.equal(await page.locator("[data-testid=signing-secret]").count(), 0);
  });

  it("switches notices on and shows the signing secret once", async () => {
    await page.check("[data-testid=notifications-enabled]");
    await page.fill("[data-testid=notifications-url]", receiverUrl);
    await page.click("[data-testid=notifications-save]");
    await page.waitForSelector("[data-testid=signing-secret]");
    secret = (await page.textContent("[data-testid=signing-secret]")).trim();
    assert.match(secret, /^kmwhsec_[0-9a-f]{64}$/);
    assert.equal(await page.isVisible("[data-testid=new-secret] [data-copy]"), true, "copy button shown by console.js");
    await shot("50-notifications-secret");
    await page.goto(`${km.url}/settings/notifications`);
    assert.equal(await page.locator("[data-testid=signing-secret]").count(), 0, "shown once");
    assert.ok(!(await page.content()).includes(secret.slice(8)), "the secret is nowhere on the page");
    assert.match(await page.textContent("[data-testid=secret-status]"), /set/);
    assert.match(await page.textContent("[data-testid=notifications-status]"), /on/);
  });

  it("sends a test delivery that the receiver verifies", async () => {
    await page.click("[data-testid=send-test]");
    await page.waitForSelector("[data-testid=test-result]");
    assert.match(await page.textContent("[data-testid=test-outcome]"), /^delivered/);
    assert.equal((await page.textContent("[data-testid=test-status]")).trim(), "204");
    const test = await delivery("test", 10_000);
    assert.ok(signatureValid(test, secret), "the test delivery is signed with the secret shown");
    assert.ok(!signatureValid(test, "kmwhsec_wrong"));
    assert.equal(test.headers["keymanager-delivery"], JSON.parse(test.body.toString("utf8")).id);
    await shot("51-notifications-test");
  });

  it("generates a new secret after a confirmation; later deliveries are signed with it", async () => {
    await page.goto(`${km.url}/settings/notifications`);
    await page.click("[data-testid=rotate-secret]");
    const dialog = page.locator("#confirm-dialog");
    await dialog.waitFor({ state: "visible" });
    await dialog.locator("[data-confirm-ok]").click();
    await page.waitForSelector("[data-testid=signing-secret]");
    const rotated = (await page.textContent("[data-testid=signing-secret]")).trim();
    assert.notEqual(rotated, secret);
    secret = rotated;
    deliveries.length = 0;
  });

  it("delivers the scheduler's signed notice for a key expiring in 10 days", async () => {
    await page.goto(`${km.url}/settings/notifications`);
    // The console works in the first partition the viewer may see, as the API lists them.
    tenant = (await api("GET", "/partitions"))[0].id;
    await api("POST", `/tenants/${tenant}/keys`, {
      label: "web-signing", algorithm: "EC", curve: "P-256", owner: "team-web",
      attributes: { sign: true, verify: true }, expires_at: Math.floor(Date.now() / 1000) + 10 * DAY,
    });
    // The job runs every 60 s on the scheduler's leader.
    const notice = await delivery("key.expiry_upcoming", 150_000);
    const body = JSON.parse(notice.body.toString("utf8"));
    assert.equal(body.key, "web-signing");
    assert.equal(body.tenant, tenant);
    assert.equal(body.owner, "team-web");
    assert.ok(body.days_left === 10 || body.days_left === 9, `days_left ${body.days_left}`);
    assert.ok(signatureValid(notice, secret), "signed with the current secret");
    assert.deepEqual(problems, [], "no CSP violations or page errors");
  });
});
