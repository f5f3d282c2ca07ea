// Single sign-on in headless Chromium against the real `keymanager dev` binary and a REAL OpenID
// Connect provider (tests/oidc-provider: panva/oidc-provider with its own login and consent
// pages). The first administrator configures the provider `corp` through the console — kind,
// issuer, client, the `groups` scope, allowed groups and the mapping grp-a → Acme Corp user,
// grp-b → Globex user — and checks the preview. Then, each in a fresh browser: alice (grp-a)
// signs in at the provider and lands in the console as user of Acme Corp only; erin (grp-a,
// grp-b) gets both partitions, in their colours; dave (contractors) is refused with the group
// problem named; replaying alice's callback and a forged callback both meet the expired page.
// Screenshots go to tests/artifacts/browser/.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { launchChromium } from "./lib/browser.mjs";
import { repoRoot, startKeymanager } from "./lib/keymanager.mjs";

const ARTIFACTS = path.join(repoRoot, "tests", "artifacts", "browser");
const PROVIDER_DIR = path.join(repoRoot, "tests", "oidc-provider");
const ADMIN = { username: "olga", name: "Olga Operator", password: "single sign-on for the whole fleet 42" };
const CLIENT = { id: "keymanager-console", secret: "console-client-secret-for-browser-tests" };
const ACCOUNTS = {
  alice: { name: "Alice Acme", preferred_username: "alice", email: "alice@example.test", groups: ["grp-a"] },
  erin: { name: "Erin Both", preferred_username: "erin", email: "erin@example.test", groups: ["grp-a", "grp-b"] },
  dave: { name: "Dave Outsider", preferred_username: "dave", groups: ["contractors"] },
};

/**
 * Starts `node tests/oidc-provider/provider.mjs` on a free port with one client (redirect URI
 * `redirectUri`) and ACCOUNTS; resolves with its URL once it listens.
 */
async function startProvider(redirectUri, timeoutMs = 30_000) {
  const dir = mkdtempSync(path.join(tmpdir(), "km-oidc-provider-"));
  const configFile = path.join(dir, "config.json");
  writeFileSync(configFile, JSON.stringify({
    port: 0,
    clients: [{ client_id: CLIENT.id, client_secret: CLIENT.secret, redirect_uris: [redirectUri] }],
    accounts: ACCOUNTS,
  }));
  const child = spawn(process.execPath, [path.join(PROVIDER_DIR, "provider.mjs"), configFile], {
    cwd: PROVIDER_DIR,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = [];
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => output.push(chunk));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => reject(new Error(`oidc-provider did not start:\n${output.join("")}`)), timeoutMs);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      buffer += chunk;
      const match = buffer.match(/oidc-provider listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`oidc-provider exited (${code ?? signal}):\n${output.join("")}`));
    });
  });
  try {
    return { url: await url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

describe("single sign-on in headless Chromium", () => {
  let km;
  let provider;
  let browser;
  let page;
  let aliceCallback;
  /** Partition id → colour, from the API (`GET /api/v1/partitions`, as the operator). */
  let colours;
  const problems = [];
  const contexts = [];

  async function shot(target, name) {
    await target.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  /** A page in a fresh browser context that reports the console's CSP violations and errors. */
  async function freshPage() {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: "light" });
    contexts.push(context);
    const fresh = await context.newPage();
    fresh.on("console", (message) => {
      const onConsole = (message.location()?.url ?? "").startsWith(km.url);
      if (onConsole && /Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
    });
    fresh.on("pageerror", (error) => {
      if (fresh.url().startsWith(km.url)) problems.push(`page error: ${error.message}`);
    });
    return fresh;
  }

  async function submit(target, selector) {
    await Promise.all([target.waitForLoadState("load"), target.click(selector)]);
  }

  /**
   * Signs `login` in from a fresh browser: the console's button, the provider's own login page
   * (any password) and consent page. Resolves with the page, the callback URL the provider sent
   * the browser to, and the console's answer to it.
   */
  async function signInAtProvider(login) {
    const fresh = await freshPage();
    await fresh.goto(`${km.url}/login`);
    await Promise.all([
      fresh.waitForURL((url) => url.href.startsWith(provider.url)),
      fresh.click("[data-sso-provider=corp]"),
    ]);
    await fresh.waitForSelector("input[name=login]");
    await fresh.fill("input[name=login]", login);
    await fresh.fill("input[name=password]", "any password will do");
    await submit(fresh, "button[type=submit]");
    const callbackPrefix = `${km.url}/login/sso/corp/callback`;
    const [response] = await Promise.all([
      fresh.waitForResponse((answer) => answer.url().startsWith(callbackPrefix)),
      fresh.getByRole("button", { name: "Continue" }).click(),
    ]);
    return { page: fresh, callback: response.url(), status: response.status() };
  }

  /** The partitions the API lists for the signed-in person of `target`, id → colour. */
  async function apiPartitions(target) {
    const answer = await target.request.get(`${km.url}/api/v1/partitions`);
    assert.equal(answer.status(), 200, await answer.text());
    return Object.fromEntries((await answer.json()).map((partition) => [partition.id, partition.colour]));
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    km = await startKeymanager();
    provider = await startProvider(`${km.url}/login/sso/corp/callback`);
    browser = await launchChromium();
    page = await freshPage();
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    await provider?.stop();
    await km?.stop();
  });

  it("sets up the first administrator, who finds single sign-on under Platform", async () => {
    await page.goto(`${km.url}/setup`);
    await page.fill("#token", km.setupToken);
    await page.fill("#username", ADMIN.username);
    await page.fill("#display_name", ADMIN.name);
    await page.fill("#password", ADMIN.password);
    await page.fill("#password_confirm", ADMIN.password);
    await Promise.all([page.waitForURL(/\/account\/totp/), page.click("[data-testid=setup-form] button[type=submit]")]);
    colours = await apiPartitions(page);
    assert.deepEqual(Object.keys(colours).sort(), ["acme", "globex"]);
    assert.notEqual(colours.acme, colours.globex);

    await page.goto(`${km.url}/`);
    const nav = await page.$$eval(".nav [data-nav]", (links) => links.map((link) => link.getAttribute("data-nav")));
    assert.ok(nav.indexOf("platform-sso") === nav.indexOf("platform-partitions") + 1, `next to Partitions: ${nav}`);
    await page.click("[data-nav=platform-sso]");
    await page.waitForSelector("[data-testid=providers-empty]");
    assert.equal(await page.isChecked("input[name=local_login]"), true);
  });

  it("configures the provider with presets, client, scope and mapping through the console", async () => {
    await page.click("[data-testid=add-provider]");
    await page.waitForSelector("[data-testid=provider-form]");
    // Presets: Entra ID builds its issuer from the directory id, Keycloak from base URL and realm.
    await page.check("input[name=kind][value=entra_id]");
    assert.equal(await page.isVisible("#entra_tenant"), true);
    assert.equal(await page.isVisible("#github_url"), false, "only the chosen kind's fields show");
    await page.fill("#entra_tenant", "contoso.onmicrosoft.com");
    assert.equal(await page.textContent("[data-testid=issuer-preview]"), "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0");
    await page.check("input[name=kind][value=keycloak]");
    await page.fill("#keycloak_base", "https://keycloak.example/");
    await page.fill("#keycloak_realm", "corp");
    assert.equal(await page.textContent("[data-testid=issuer-preview]"), "https://keycloak.example/realms/corp");
    await page.check("input[name=kind][value=github]");
    assert.equal(await page.inputValue("#github_url"), "https://github.com");
    await page.check("input[name=kind][value=oidc]");
    assert.equal(await page.isVisible("#entra_tenant"), false);

    await page.fill("#id", "corp");
    await page.fill("#display_name", "Corp SSO");
    await page.fill("#issuer_url", provider.url);
    await page.fill("#client_id", CLIENT.id);
    await page.fill("#client_secret", CLIENT.secret);
    await page.fill("#extra_scopes", "groups");
    await page.fill("#allowed_groups", "grp-a\ngrp-b");
    const rules = [
      ["grp-a", "acme", "user"],
      ["grp-b", "globex", "user"],
    ];
    for (const [index, [group, partition, role]] of rules.entries()) {
      await page.selectOption(`#rule_claim_${index}`, "group");
      await page.fill(`#rule_value_${index}`, group);
      await page.selectOption(`#rule_scope_${index}`, partition);
      await page.selectOption(`#rule_role_${index}`, role);
    }
    // JavaScript adds rows (without it, the server's empty rows are the way).
    const before = await page.locator("[data-rule-row]").count();
    await page.click("[data-add-rule]");
    assert.equal(await page.locator("[data-rule-row]").count(), before + 1);
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), `rule_value_${before}`);
    assert.equal(await page.isChecked("input[name=enabled]"), true);
    await shot(page, "28-sso-provider-form");

    await Promise.all([page.waitForURL(/\/platform\/sso\/corp\?done=sso_provider_saved_secret#main$/), page.click("[data-testid=save-provider]")]);
    assert.match(await page.textContent("main .alert-success"), /client secret stored/);
    assert.match(await page.textContent("[data-testid=secret-status]"), /A secret is stored/);
    assert.equal(await page.inputValue("#client_secret"), "", "the secret is never shown");
    assert.equal((await page.content()).includes(CLIENT.secret), false);
    assert.equal(await page.textContent("[data-testid=redirect-uri]"), `${km.url}/login/sso/corp/callback`);
    assert.equal(await page.inputValue("#rule_value_1"), "grp-b");

    await page.goto(`${km.url}/platform/sso`);
    const row = page.locator("[data-provider-row=corp]");
    assert.match(await row.textContent(), new RegExp(`Corp SSO[\\s\\S]*OpenID Connect[\\s\\S]*${provider.url}[\\s\\S]*stored[\\s\\S]*enabled`));
    await shot(page, "29-sso-providers");
  });

  it("previews the mapping: both groups give Acme Corp and Globex as user, in their colours", async () => {
    await page.goto(`${km.url}/platform/sso/corp`);
    await page.fill("#preview_groups", "grp-a\ngrp-b");
    await submit(page, "[data-testid=preview-submit]");
    const outcome = page.locator("[data-testid=preview-outcome]");
    assert.equal(await outcome.getAttribute("data-outcome"), "granted");
    const bindings = await page.$$eval("[data-testid=preview-bindings] li", (items) =>
      items.map((item) => ({
        scope: item.getAttribute("data-binding"),
        role: item.getAttribute("data-role"),
        name: item.querySelector(".binding-name").textContent,
        fill: item.querySelector("svg circle").getAttribute("fill"),
      })));
    assert.deepEqual(bindings, [
      { scope: "acme", role: "user", name: "Acme Corp (acme)", fill: colours.acme },
      { scope: "globex", role: "user", name: "Globex (globex)", fill: colours.globex },
    ]);
    assert.equal(await page.locator("[data-testid=preview-matched] li").count(), 2);
    await shot(page, "30-sso-preview");
    await page.emulateMedia({ colorScheme: "dark" });
    await shot(page, "31-sso-preview-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("alice signs in at the provider and is user of Acme Corp only", async () => {
    const probe = await freshPage();
    await probe.goto(`${km.url}/login`);
    assert.equal(await probe.textContent("[data-sso-provider=corp]"), "Sign in with Corp SSO");
    assert.equal(await probe.isVisible("[data-testid=login-form]"), true, "password sign-in is still offered");
    await shot(probe, "32-sso-login");

    const { page: alice, callback, status } = await signInAtProvider("alice");
    assert.equal(status, 200);
    assert.match(callback, /[?&]code=/);
    aliceCallback = callback;
    await alice.waitForURL(`${km.url}/`);
    assert.equal(await alice.textContent("[data-testid=current-partition]"), "Acme Corp");
    assert.match(await alice.textContent(".partition-role"), /^user/);
    assert.equal(await alice.getAttribute(".partition-strip", "data-colour"), colours.acme);
    assert.equal(await alice.locator("[data-partition]").count(), 0, "nothing to switch to");
    assert.deepEqual(await apiPartitions(alice), { acme: colours.acme });
    assert.equal(await alice.locator("[data-nav=platform-sso]").count(), 0);
    await shot(alice, "33-sso-alice-signed-in");
  });

  it("erin (both groups) sees Acme Corp and Globex in the switcher, each in its colour", async () => {
    const { page: erin } = await signInAtProvider("erin");
    await erin.waitForURL(`${km.url}/`);
    const options = await erin.$$eval("[data-partition]", (buttons) =>
      buttons.map((button) => ({
        id: button.getAttribute("data-partition"),
        name: button.querySelector(".partition-option-name").textContent,
        fill: button.querySelector("svg circle").getAttribute("fill"),
      })));
    assert.deepEqual(options, [
      { id: "acme", name: "Acme Corp", fill: colours.acme },
      { id: "globex", name: "Globex", fill: colours.globex },
    ]);
    assert.deepEqual(await apiPartitions(erin), colours);
    await shot(erin, "34-sso-erin-switcher");
  });

  it("dave (contractors) is refused, and the page names the group problem", async () => {
    const { page: dave, status } = await signInAtProvider("dave");
    assert.equal(status, 403);
    await dave.waitForSelector("[data-testid=sso-refused]");
    assert.equal(await dave.textContent("h1"), "Sign-in refused");
    assert.match(await dave.textContent("[data-testid=sso-refused-message]"), /not in a group that may use keymanager/);
    assert.equal(await dave.getAttribute("[data-testid=sso-refused]", "data-reason"), "not_in_allowed_group");
    const cookies = await dave.context().cookies(km.url);
    assert.equal(cookies.some((cookie) => cookie.name === "km_session"), false, "no session");
    await shot(dave, "35-sso-refused");
    await Promise.all([dave.waitForURL(`${km.url}/login`), dave.click("[data-testid=back-to-login]")]);
  });

  it("a replayed or forged callback meets the expired page", async () => {
    const replay = await freshPage();
    const replayed = await replay.goto(aliceCallback);
    assert.equal(replayed.status(), 400);
    assert.match(await replay.textContent("[data-testid=sso-refused-message]"), /expired or was already used — start again/);
    assert.equal((await replay.context().cookies(km.url)).some((cookie) => cookie.name === "km_session"), false);
    await shot(replay, "36-sso-expired");

    const state = randomBytes(24).toString("base64url");
    const forged = await replay.goto(`${km.url}/login/sso/corp/callback?code=forged-code&state=${state}`);
    assert.equal(forged.status(), 400);
    assert.equal(await replay.textContent("h1"), "Sign-in refused");
  });

  it("with password sign-in off, the form folds away as the administrators' break-glass", async () => {
    await page.goto(`${km.url}/platform/sso`);
    await page.uncheck("input[name=local_login]");
    await Promise.all([page.waitForURL(/\/platform\/sso\?done=sso_saved#main$/), page.click("[data-testid=local-login-form] button[type=submit]")]);
    assert.match(await page.textContent("[data-testid=local-login-status]"), /break-glass only/);

    const login = await freshPage();
    await login.goto(`${km.url}/login`);
    const breakGlass = login.locator("[data-testid=break-glass]");
    assert.equal(await breakGlass.getAttribute("open"), null, "folded");
    assert.equal(await login.isVisible("#username"), false);
    assert.equal(await login.isVisible("[data-sso-provider=corp]"), true);
    await shot(login, "37-sso-break-glass");
    await login.click("[data-testid=break-glass] summary");
    await login.fill("#username", ADMIN.username);
    await login.fill("#password", ADMIN.password);
    await Promise.all([login.waitForURL(`${km.url}/`), login.click("[data-testid=login-form] button[type=submit]")]);
    assert.match(await login.textContent("[data-testid=user-chip]"), new RegExp(ADMIN.name));
  });

  it("logged no CSP violation or script error on the console", () => {
    assert.deepEqual(problems, []);
  });
});
