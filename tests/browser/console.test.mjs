// The console in headless Chromium against the real `keymanager dev` binary (issue #3, "Must
// show"): setup with the printed token → first administrator → TOTP enrolment (codes computed
// here from the secret on the page) → sign out → sign in with password + TOTP → create a
// readonly user → that user can neither see nor reach the admin pages (UI, direct URL and the
// REST API all refuse). Screenshots go to tests/artifacts/browser/.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { launchChromium } from "./lib/browser.mjs";
import { repoRoot, startKeymanager } from "./lib/keymanager.mjs";
import { totp } from "./lib/totp.mjs";

const ARTIFACTS = path.join(repoRoot, "tests", "artifacts", "browser");
const ADMIN = { username: "ada", name: "Ada Lovelace", password: "analytical engine 1843" };
const READER = { username: "rita", name: "Rita Reader", password: "quiet library hours 42" };

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

describe("keymanager console in headless Chromium", () => {
  let km;
  let browser;
  let context;
  let page;
  let totpSecret;
  const problems = [];

  async function shot(name) {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async function signIn(user) {
    await page.goto(`${km.url}/login`);
    await page.fill("#username", user.username);
    await page.fill("#password", user.password);
    await Promise.all([page.waitForLoadState("load"), page.click("[data-testid=login-form] button[type=submit]")]);
  }

  async function signOut() {
    await Promise.all([page.waitForURL(/\/login\?done=signed_out$/), page.click("[data-testid=logout]")]);
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    km = await startKeymanager();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1360, height: 860 }, colorScheme: "light" });
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

  it("sends a fresh installation to setup, with the strict security headers", async () => {
    const home = await page.request.get(`${km.url}/`, { maxRedirects: 0 });
    assert.equal(home.status(), 303);
    assert.equal(home.headers()["location"], "/login", "anonymous users go to sign-in first");
    await page.goto(`${km.url}/`);
    assert.equal(new URL(page.url()).pathname, "/setup", "sign-in forwards to setup until it is done");
    const headers = (await page.request.get(`${km.url}/setup`)).headers();
    assert.equal(headers["content-security-policy"], CSP);
    assert.equal(headers["x-content-type-options"], "nosniff");
    assert.equal(headers["referrer-policy"], "no-referrer");
    await shot("01-setup");
  });

  it("creates the first administrator with the printed setup token", async () => {
    await page.fill("#token", "wrong-token");
    await page.fill("#username", ADMIN.username);
    await page.fill("#display_name", ADMIN.name);
    await page.fill("#password", ADMIN.password);
    await page.fill("#password_confirm", ADMIN.password);
    await page.click("[data-testid=setup-form] button[type=submit]");
    await page.waitForSelector("[data-testid=form-error]");
    assert.match(await page.textContent("[data-testid=form-error]"), /setup token is wrong/);
    await shot("02-setup-wrong-token");

    await page.fill("#token", km.setupToken);
    await page.fill("#password", ADMIN.password);
    await page.fill("#password_confirm", ADMIN.password);
    await Promise.all([page.waitForURL(/\/account\/totp/), page.click("[data-testid=setup-form] button[type=submit]")]);
    const cookies = await context.cookies();
    const session = cookies.find((cookie) => cookie.name === "km_session");
    assert.ok(session, "signed in right after setup");
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, "Strict");
    assert.equal(session.path, "/");
  });

  it("enrols TOTP: QR code and key shown, confirmed with a code computed from the key", async () => {
    await page.click("[data-testid=totp-begin]");
    await page.waitForSelector("[data-testid=totp-qr]");
    const qr = await page.$eval("[data-testid=totp-qr]", (img) => ({
      src: img.getAttribute("src"),
      width: img.naturalWidth,
    }));
    assert.match(qr.src, /^data:image\/png;base64,/);
    assert.ok(qr.width > 0, "the QR image decodes");
    totpSecret = (await page.textContent("[data-testid=totp-secret]")).trim();
    assert.match(totpSecret, /^[A-Z2-7]+=*$/);
    await shot("03-totp-enrolment");

    await page.fill("#code", totp(totpSecret));
    await Promise.all([page.waitForLoadState("load"), page.click("[data-testid=totp-confirm-form] button[type=submit]")]);
    await page.waitForSelector("[data-testid=recovery-codes]");
    const codes = await page.$$eval("[data-testid=recovery-codes] li", (items) => items.map((li) => li.textContent));
    assert.ok(codes.length >= 8, `recovery codes shown (${codes.length})`);
    await shot("04-recovery-codes");
  });

  it("shows the dashboard with the partition switcher, in light and dark", async () => {
    await page.goto(`${km.url}/`);
    assert.equal(await page.textContent("[data-testid=current-partition]"), "Acme Corp");
    for (const nav of ["home", "users", "audit", "settings", "account"]) {
      assert.equal(await page.locator(`[data-nav=${nav}]`).count(), 1, `admin sees ${nav}`);
    }
    await shot("05-dashboard-light");
    await page.emulateMedia({ colorScheme: "dark" });
    await shot("06-dashboard-dark");
    await page.emulateMedia({ colorScheme: "light" });

    // The toggle overrides the OS preference and is remembered.
    await page.click("[data-theme-toggle]");
    assert.equal(await page.getAttribute("html", "data-theme"), "dark");
    await page.reload();
    assert.equal(await page.getAttribute("html", "data-theme"), "dark");
    await page.click("[data-theme-toggle]");
    assert.equal(await page.getAttribute("html", "data-theme"), "light");
  });

  it("is keyboard accessible: skip link first, visible focus", async () => {
    await page.goto(`${km.url}/`);
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => ({
      text: document.activeElement?.textContent?.trim(),
      outline: getComputedStyle(document.activeElement).outlineStyle,
      top: document.activeElement.getBoundingClientRect().top,
    }));
    assert.equal(focused.text, "Skip to content");
    assert.notEqual(focused.outline, "none", "focus is visible");
    assert.ok(focused.top >= 0, "the focused skip link is on screen");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    const next = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(next, "none");
    await shot("07-keyboard-focus");
  });

  it("signs out, then signs in with password and a TOTP code", async () => {
    await signOut();
    assert.equal(await page.locator("[data-testid=login-form]").count(), 1);
    assert.equal((await context.cookies()).some((c) => c.name === "km_session"), false);
    await shot("08-login");

    await signIn(ADMIN);
    assert.equal(new URL(page.url()).pathname, "/login/second-factor");
    assert.match(await page.textContent(".auth-sub"), new RegExp(`Signing in as ${ADMIN.username}`));
    await page.fill("#code", "000000");
    await page.click("[data-testid=totp-form] button[type=submit]");
    await page.waitForSelector("[data-testid=form-error]");
    await shot("09-second-factor-wrong");
    // The enrolment used the current time step; an authenticator's next code (one step ahead,
    // within the ±1 step the server accepts) is fresh.
    await page.fill("#code", totp(totpSecret, Date.now() / 1000 + 30));
    await Promise.all([page.waitForURL(`${km.url}/`), page.click("[data-testid=totp-form] button[type=submit]")]);
    assert.equal(await page.textContent("[data-testid=current-partition]"), "Acme Corp");

    await page.click("[data-testid=user-chip]");
    await page.waitForSelector("[data-testid=profile]");
    assert.equal((await page.textContent("[data-testid=totp-status]")).trim(), "On");
    await shot("09b-account");
  });

  it("creates a readonly user on the current partition", async () => {
    await page.click("[data-nav=users]");
    await page.waitForSelector("[data-testid=users-table]");
    await page.fill("#new-username", READER.username);
    await page.fill("#new-display", READER.name);
    await page.fill("#new-password", READER.password);
    await page.selectOption("#new-role", "readonly");
    await Promise.all([page.waitForURL(/done=user_created/), page.click("[data-testid=create-user-form] button[type=submit]")]);
    const row = page.locator(`[data-testid=users-table] tr[data-username=${READER.username}]`);
    assert.equal(await row.count(), 1);
    assert.equal(await row.getAttribute("data-role"), "readonly");

    // The table filter works without a round trip.
    await page.fill("input[name=q]", "rita");
    assert.equal(await page.locator("[data-testid=users-table] tbody tr[data-row]:visible").count(), 1);
    await page.fill("input[name=q]", "");
    await shot("10-users");

    // Destructive actions ask first; cancelling changes nothing.
    await row.locator("form[action='/users/status'] button").click();
    await page.waitForSelector("#confirm-dialog[open]");
    assert.match(await page.textContent("#confirm-dialog [data-confirm-title]"), /Disable rita/);
    await shot("10b-confirm-disable");
    await page.click("#confirm-dialog [data-confirm-cancel]");
    assert.equal(await page.locator("#confirm-dialog[open]").count(), 0);
    assert.equal(new URL(page.url()).search, "?done=user_created", "nothing was submitted");
  });

  it("switches partitions from the sidebar", async () => {
    await page.click("[data-partition=globex]");
    await page.waitForLoadState("load");
    assert.equal(await page.textContent("[data-testid=current-partition]"), "Globex");
    await shot("11-partition-globex");
    await page.click("[data-partition=acme]");
    await page.waitForLoadState("load");
    assert.equal(await page.textContent("[data-testid=current-partition]"), "Acme Corp");
    await page.goto(`${km.url}/audit`);
    assert.ok((await page.locator("[data-testid=audit-table] tbody tr[data-row]").count()) > 0, "audit events listed");
    await page.click("[data-testid=audit-scope-all]");
    await page.waitForURL(/scope=all/);
    const actions = await page.$$eval("[data-testid=audit-table] tbody tr[data-row]", (rows) => rows.map((r) => r.getAttribute("data-action")));
    assert.ok(actions.includes("complete_setup"), `platform events listed: ${actions.join(", ")}`);
    await shot("12-audit");
    await page.goto(`${km.url}/settings`);
    assert.equal(await page.locator("[data-testid=platform-settings]").count(), 1);
    await shot("13-settings");
    await signOut();
  });

  it("the readonly user cannot see or reach admin pages (UI, direct URL, API)", async () => {
    await signIn(READER);
    assert.equal(new URL(page.url()).pathname, "/", "no second factor enrolled: straight in");
    assert.equal(await page.textContent("[data-testid=current-partition]"), "Acme Corp");
    assert.equal(await page.locator("[data-nav=users]").count(), 0, "no Users link");
    assert.equal(await page.locator("[data-partition=globex]").count(), 0, "only its own partition");
    await shot("14-readonly-dashboard");

    const direct = await page.goto(`${km.url}/users`);
    assert.equal(direct.status(), 403);
    assert.equal(await page.getAttribute("[data-testid=error-page]", "data-status"), "403");
    await shot("15-readonly-users-forbidden");

    await page.goto(`${km.url}/settings`);
    assert.equal(await page.locator("[data-testid=platform-settings]").count(), 0, "no platform settings");

    // The REST API, with the same session cookie: refused as well.
    const tenantUsers = await page.request.get(`${km.url}/api/v1/tenants/acme/users`);
    assert.equal(tenantUsers.status(), 403);
    const platformUsers = await page.request.get(`${km.url}/api/v1/platform/users`);
    assert.equal(platformUsers.status(), 403);
    const otherTenant = await page.request.get(`${km.url}/api/v1/tenants/globex/users`);
    assert.ok([403, 404].includes(otherTenant.status()), `other tenant refused (${otherTenant.status()})`);

    // A forged form post from this session is refused too (its CSRF token is valid, its role is not).
    const csrf = await page.getAttribute("input[name=csrf]", "value");
    const forged = await page.request.post(`${km.url}/users`, {
      form: { csrf, username: "mallory", password: "mallory password 99", role: "admin" },
    });
    assert.equal(forged.status(), 403);
  });

  it("logged no CSP violation or script error", () => {
    assert.deepEqual(problems, []);
  });
});
