// The partition registry in headless Chromium against the real `keymanager dev` binary: the first
// administrator (a platform operator) sees the registered demo partitions, onboards the spare
// emulator partition `initech` through the wizard — a wrong API key first (the TSB's error is
// shown explained, the key is not echoed), then the right one from the dev state directory (the
// test shows the TSB's version), then "Onboard" — and finds it in the registry and in the sidebar
// switcher with the colour picked, switches to it and opens its status page, its own-credentials
// page and its edit page. Screenshots go to tests/artifacts/browser/.

import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";

import { launchChromium } from "./lib/browser.mjs";
import { repoRoot, startKeymanager } from "./lib/keymanager.mjs";

const ARTIFACTS = path.join(repoRoot, "tests", "artifacts", "browser");
const ADMIN = { username: "olga", name: "Olga Operator", password: "registry of partitions 77" };
const SPARE = { id: "initech", name: "Initech", colour: "#f97316" };
const WRONG_KEY = "km-dev-this-is-not-the-key-of-initech";

/** Waits until `keymanager dev` printed the banner line matching `pattern`; its first group. */
async function bannerValue(km, pattern, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const line of km.output) {
      const match = line.match(pattern);
      if (match) return match[1];
    }
    if (Date.now() > deadline) throw new Error(`no ${pattern} in the banner:\n${km.output.join("\n")}`);
    await sleep(50);
  }
}

describe("partition registry in headless Chromium", () => {
  let km;
  let browser;
  let page;
  let emulator;
  let credentialsFile;
  const problems = [];

  async function shot(name) {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  /** The API key `keymanager dev` generated for an emulator partition. */
  function devApiKey(name) {
    const { partitions } = JSON.parse(readFileSync(credentialsFile, "utf8"));
    const entry = partitions.find((partition) => partition.name === name);
    assert.ok(entry, `${credentialsFile} has a key for ${name}`);
    return entry.api_key;
  }

  async function submit(testId) {
    await Promise.all([page.waitForLoadState("load"), page.click(`[data-testid=${testId}]`)]);
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    km = await startKeymanager();
    emulator = (await bannerValue(km, /TSB emulator\s+(\S+)/)).replace(/\/$/, "");
    credentialsFile = await bannerValue(km, /\(API keys in (\S+)\)/);
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

  it("sets up the first administrator, who sees the registry of demo partitions", async () => {
    await page.goto(`${km.url}/setup`);
    await page.fill("#token", km.setupToken);
    await page.fill("#username", ADMIN.username);
    await page.fill("#display_name", ADMIN.name);
    await page.fill("#password", ADMIN.password);
    await page.fill("#password_confirm", ADMIN.password);
    await Promise.all([page.waitForURL(/\/account\/totp/), page.click("[data-testid=setup-form] button[type=submit]")]);

    await page.goto(`${km.url}/`);
    assert.equal(await page.textContent("[data-testid=current-partition]"), "Acme Corp");
    await page.click("[data-nav=platform-partitions]");
    await page.waitForSelector("[data-testid=partitions-table]");
    const ids = await page.$$eval("[data-partition-row]", (rows) => rows.map((row) => row.getAttribute("data-partition-row")));
    assert.deepEqual(ids, ["acme", "globex"], "the registered demo partitions, by name");
    assert.equal(await page.locator("[data-partition-row=initech]").count(), 0, "the spare partition is not registered");
    await shot("20-partitions-registry");
  });

  it("explains the TSB's refusal of a wrong API key, without echoing the key", async () => {
    await page.click("[data-testid=onboard-partition]");
    await page.waitForSelector("[data-testid=onboard-form]");
    await page.fill("#id", SPARE.id);
    await page.fill("#display_name", SPARE.name);
    await page.click(`[data-colour-option="${SPARE.colour}"]`);
    await page.fill("#endpoint", `${emulator}/partitions/${SPARE.id}`);
    assert.equal(await page.isChecked("input[name=auth][value=api_keys]"), true, "API keys preselected");
    assert.equal(await page.isVisible("#bearer_token"), false, "only the chosen mode's fields show");
    await page.fill("#api_key", WRONG_KEY);
    await submit("test-connection");

    const error = await page.waitForSelector("[data-testid=connection-error]");
    const text = await error.textContent();
    assert.match(text, /refused the credentials/, text);
    assert.match(text, /API key/, "the explanation names the API key");
    assert.equal((await page.content()).includes(WRONG_KEY), false, "the submitted key is not echoed");
    assert.equal(await page.inputValue("#api_key"), "", "secret fields are blank again");
    assert.equal(await page.inputValue("#id"), SPARE.id, "the other fields are kept");
    assert.equal(await page.isChecked(`input[name=colour][value="${SPARE.colour}"]`), true);
    await shot("21-onboard-wrong-key");
  });

  it("tests the right key: the TSB's version, licence and statistics", async () => {
    await page.fill("#api_key", devApiKey(SPARE.id));
    await submit("test-connection");
    await page.waitForSelector("[data-testid=connection-ok]");
    const version = (await page.textContent("[data-testid=tsb-version]")).trim();
    assert.ok(version.length > 0, "the TSB reports a version");
    assert.ok((await page.locator("[data-testid=keystore-statistics] li").count()) === 5);
    assert.equal(await page.locator("[data-testid=connection-error]").count(), 0);
    assert.equal(await page.inputValue("#api_key"), "", "the key is not kept in the page");
    await shot("22-onboard-test-ok");
  });

  it("onboards the partition: in the registry and in the switcher, in its colour", async () => {
    await page.fill("#api_key", devApiKey(SPARE.id));
    await Promise.all([page.waitForURL(/\/platform\/partitions\?done=partition_onboarded#main$/), page.click("[data-testid=onboard-submit]")]);
    assert.match(await page.textContent("main .alert-success"), /Partition onboarded/);
    const row = page.locator(`[data-partition-row=${SPARE.id}]`);
    assert.equal(await row.count(), 1);
    assert.match(await row.textContent(), new RegExp(`${SPARE.name}[\\s\\S]*partitions/${SPARE.id}[\\s\\S]*api_keys[\\s\\S]*hsm[\\s\\S]*active`));
    assert.equal(await row.locator("svg circle").getAttribute("fill"), SPARE.colour);

    const option = page.locator(`[data-partition=${SPARE.id}]`);
    assert.equal(await option.count(), 1, "the switcher offers the new partition");
    assert.equal(await option.locator("svg circle").getAttribute("fill"), SPARE.colour);
    await shot("23-partition-onboarded");
  });

  it("switches to the new partition and shows its status", async () => {
    await Promise.all([page.waitForLoadState("load"), page.click(`[data-partition=${SPARE.id}]`)]);
    assert.equal(await page.textContent("[data-testid=current-partition]"), SPARE.name);
    assert.equal(await page.getAttribute(".partition-strip", "data-colour"), SPARE.colour);

    await page.click("[data-nav=partition]");
    await page.waitForURL(new RegExp(`/partitions/${SPARE.id}$`));
    assert.equal((await page.textContent("[data-testid=partition-status]")).trim(), "active");
    assert.equal(await page.textContent("[data-testid=partition-endpoint]"), `${emulator}/partitions/${SPARE.id}`);
    assert.ok((await page.textContent("[data-testid=tsb-version]")).trim().length > 0);
    await shot("24-partition-status");
    await page.emulateMedia({ colorScheme: "dark" });
    await shot("25-partition-status-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("offers the member's own credentials and the operator's edit page", async () => {
    await page.click("[data-testid=manage-own-credentials]");
    await page.waitForSelector("[data-testid=own-credentials-form]");
    assert.match(await page.textContent("[data-testid=own-credentials-status]"), /none kept/);
    assert.equal(await page.locator("#endpoint").count(), 0, "the partition's endpoint is fixed here");
    await shot("26-own-credentials");

    await page.goto(`${km.url}/platform/partitions/${SPARE.id}`);
    await page.waitForSelector("[data-testid=offboard-form]");
    assert.match(await page.textContent("[data-testid=offboard-form]"), /Nothing in the HSM is deleted/);
    assert.equal(await page.inputValue("#endpoint"), `${emulator}/partitions/${SPARE.id}`);
    assert.equal(await page.isChecked(`input[name=colour][value="${SPARE.colour}"]`), true);
    await shot("27-edit-partition");
  });

  it("logged no CSP violation or script error", () => {
    assert.deepEqual(problems, []);
  });
});
