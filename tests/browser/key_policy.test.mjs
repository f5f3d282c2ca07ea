// A key's SKA policy page in headless Chromium against the real `keymanager dev` binary: the first
// administrator creates a key, opens its policy page (every rule "No approval needed"), gives the
// block rule "1 of 1" with an approver's P-256 public key (generated here, SPKI DER base64) — a
// refused quorum first keeps the input and names the domain's path —, sees it shown with the
// key's short fingerprint; suspending the key from its page then waits for approval: the policy
// page shows the "suspend" request at "0 of 1". A readonly user sees policy and request but no
// editor and no withdraw button, and forged posts are refused (403); the administrator withdraws
// the request and it is gone. Screenshots go to tests/artifacts/browser/.

import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { launchChromium } from "./lib/browser.mjs";
import { repoRoot, startKeymanager } from "./lib/keymanager.mjs";

const ARTIFACTS = path.join(repoRoot, "tests", "artifacts", "browser");
const ADMIN = { username: "pia", name: "Pia Policy", password: "quorum of the realm 2026" };
const READER = { username: "otto", name: "Otto Observer", password: "look but never touch 7" };
const LABEL = "policy-signing";

const spki = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" });
const SPKI_B64 = spki.toString("base64");
const FINGERPRINT = createHash("sha256").update(spki).digest("hex").slice(0, 16);

describe("a key's SKA policy in headless Chromium", () => {
  let km;
  let browser;
  let page;
  let readerPage;
  const problems = [];

  async function shot(target, name) {
    await target.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  function watch(target) {
    target.on("console", (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
    });
    target.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  }

  /** Submits a form whose button asks for confirmation, confirming in the dialog. */
  async function confirmed(target, selector, url) {
    await target.click(selector);
    const dialog = target.locator("#confirm-dialog");
    await dialog.waitFor({ state: "visible" });
    await Promise.all([target.waitForURL(url), dialog.locator("[data-confirm-ok]").click()]);
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    km = await startKeymanager();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: "light" });
    page = await context.newPage();
    watch(page);
  });

  after(async () => {
    await browser?.close();
    await km?.stop();
  });

  it("sets up the administrator, a readonly user and a key", async () => {
    await page.goto(`${km.url}/setup`);
    await page.fill("#token", km.setupToken);
    await page.fill("#username", ADMIN.username);
    await page.fill("#display_name", ADMIN.name);
    await page.fill("#password", ADMIN.password);
    await page.fill("#password_confirm", ADMIN.password);
    await Promise.all([page.waitForURL(/\/account\/totp/), page.click("[data-testid=setup-form] button[type=submit]")]);

    await page.goto(`${km.url}/users`);
    await page.fill("#new-username", READER.username);
    await page.fill("#new-display", READER.name);
    await page.fill("#new-password", READER.password);
    await page.selectOption("#new-role", "readonly");
    await Promise.all([page.waitForURL(/done=user_created/), page.click("[data-testid=create-user-form] button[type=submit]")]);

    await page.goto(`${km.url}/keys/new`);
    await page.fill("#label", LABEL);
    await page.selectOption("#algorithm", "EC");
    await page.selectOption("#param_EC", "secp256r1");
    await Promise.all([page.waitForURL(new RegExp(`/keys/${LABEL}\\?done=key_created`)), page.click("[data-testid=create-key-submit]")]);
  });

  it("shows a new key's rules as needing no approval, with the editor", async () => {
    const response = await page.goto(`${km.url}/keys/${LABEL}/policy`);
    assert.equal(response.status(), 200);
    for (const rule of ["use", "block", "unblock", "modify"]) {
      const view = page.locator(`[data-testid=rule-${rule}]`);
      assert.equal(await view.getAttribute("data-kind"), "none", rule);
      assert.match(await view.textContent(), /No approval needed/);
    }
    assert.equal(await page.locator("[data-testid=policy-editor]").count(), 1);
    assert.equal(await page.locator("input[name=use_mode][value=frozen]").count(), 0, "the use rule cannot be frozen");
    assert.equal(await page.locator("input[name=block_mode][value=frozen]").count(), 1);
    assert.match(await page.textContent("[data-testid=key-requests]"), /No requests/);
  });

  it("refuses an impossible quorum, keeping the input, then applies a 1-of-1 block rule", async () => {
    await page.check("input[name=block_mode][value=approvals]");
    await page.fill("#block_token", "security");
    await page.fill("#block_quorum", "2");
    await page.fill("#block_timeout", "60");
    await page.fill("#block_approvers", `alice, public_key, -----BEGIN PUBLIC KEY-----\n${SPKI_B64}\n-----END PUBLIC KEY-----`);
    await page.fill("#reason", "security team approves blocking");
    const [refused] = await Promise.all([page.waitForResponse((r) => r.request().method() === "POST"), page.click("[data-testid=policy-submit]")]);
    assert.equal(refused.status(), 422);
    assert.match(await page.textContent("[data-testid=form-error]"), /ruleBlock\.tokens\[0\]\.groups\[0\]/);
    assert.match(await page.textContent("[data-testid=edit-block]"), /ruleBlock/, "the message is next to the rule");
    assert.equal(await page.inputValue("#block_token"), "security", "input kept");
    assert.match(await page.inputValue("#block_approvers"), /alice, public_key/);
    assert.equal(await page.isChecked("input[name=block_mode][value=approvals]"), true);
    assert.equal(await page.inputValue("#reason"), "security team approves blocking");

    await page.fill("#block_quorum", "1");
    await Promise.all([page.waitForURL(/\/policy\?policy=applied/), page.click("[data-testid=policy-submit]")]);
    assert.match(await page.textContent("main .alert-success"), /Policy applied/);
    const block = page.locator("[data-testid=rule-block]");
    assert.equal(await block.getAttribute("data-kind"), "tokens");
    assert.match(await block.textContent(), /Token security — timelock none, timeout 60 minutes/);
    assert.equal((await block.locator("[data-testid=quorum]").textContent()).trim(), "1 of 1 approve");
    const approver = block.locator("[data-testid=approver]");
    assert.match(await approver.textContent(), new RegExp(`alice\\s*public key\\s*${FINGERPRINT}`));
    assert.equal(await page.getAttribute("[data-testid=rule-use]", "data-kind"), "none");
    // The simple form shows the rule again; the JSON editor has the TSB's form.
    assert.equal(await page.inputValue("#block_quorum"), "1");
    assert.equal(await page.inputValue("#block_approvers"), `alice, public_key, ${SPKI_B64}`);
    assert.match(await page.inputValue("#policy_json"), /"ruleBlock": \{/);
    await shot(page, "45-key-policy");
  });

  it("suspending the key waits for the block rule's approver", async () => {
    await page.goto(`${km.url}/keys/${LABEL}`);
    await confirmed(page, "[data-testid=action-suspend]", new RegExp(`/keys/${LABEL}\\?done=`));
    await page.goto(`${km.url}/keys/${LABEL}/policy`);
    const request = page.locator("[data-testid=request]");
    assert.equal(await request.count(), 1);
    assert.equal(await request.getAttribute("data-change"), "suspend");
    assert.equal((await request.locator("[data-testid=request-change]").textContent()).trim(), "suspend");
    assert.equal((await request.locator("[data-testid=request-progress]").textContent()).trim(), "0 of 1 approvals");
    assert.equal(await request.locator("meter").getAttribute("max"), "1");
    assert.match(await request.textContent(), new RegExp(`by ${ADMIN.username}`));
    assert.equal(await request.locator("[data-testid=withdraw-request]").count(), 1);
    await shot(page, "46-key-policy-request");
  });

  it("a readonly user sees the policy and the request, but cannot change either", async () => {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: "light" });
    readerPage = await context.newPage();
    watch(readerPage);
    await readerPage.goto(`${km.url}/login`);
    await readerPage.fill("#username", READER.username);
    await readerPage.fill("#password", READER.password);
    await Promise.all([readerPage.waitForLoadState("load"), readerPage.click("[data-testid=login-form] button[type=submit]")]);
    const response = await readerPage.goto(`${km.url}/keys/${LABEL}/policy`);
    assert.equal(response.status(), 200);
    assert.equal(await readerPage.getAttribute("[data-testid=rule-block]", "data-kind"), "tokens");
    assert.equal(await readerPage.locator("[data-testid=request]").count(), 1);
    assert.equal(await readerPage.locator("[data-testid=policy-editor]").count(), 0, "no editor");
    assert.equal(await readerPage.locator("[data-testid=withdraw-request]").count(), 0, "no withdraw button");
    assert.equal(await readerPage.locator("main form").count(), 0, "no forms at all");
    await shot(readerPage, "47-key-policy-readonly");

    const csrf = await readerPage.getAttribute("input[name=csrf]", "value");
    const headers = { Origin: km.url };
    const forgedPolicy = await readerPage.request.post(`${km.url}/keys/${LABEL}/policy`, {
      headers,
      form: { csrf, editor: "json", policy_json: "{}" },
    });
    assert.equal(forgedPolicy.status(), 403);
    assert.match(await forgedPolicy.text(), /have access to this page/, "refused for the role, not the form");
    const forgedForm = await readerPage.request.post(`${km.url}/keys/${LABEL}/policy`, {
      headers,
      form: { csrf, editor: "form", use_mode: "none", block_mode: "none", unblock_mode: "none", modify_mode: "none" },
    });
    assert.equal(forgedForm.status(), 403);
    assert.match(await forgedForm.text(), /have access to this page/, "refused for the role, not the form");
    const id = await readerPage.getAttribute("[data-testid=request]", "data-request-id");
    const forgedCancel = await readerPage.request.post(`${km.url}/keys/${LABEL}/requests/${encodeURIComponent(id)}/cancel`, {
      headers,
      form: { csrf },
    });
    assert.equal(forgedCancel.status(), 403);
    assert.match(await forgedCancel.text(), /have access to this page/, "refused for the role, not the form");
    await context.close();
  });

  it("the administrator withdraws the request, and the policy is unchanged", async () => {
    await page.goto(`${km.url}/keys/${LABEL}/policy`);
    await confirmed(page, "[data-testid=withdraw-request]", /\/policy\?policy=withdrawn/);
    assert.match(await page.textContent("main .alert-success"), /Request withdrawn/);
    assert.equal(await page.locator("[data-testid=request]").count(), 0);
    assert.match(await page.textContent("[data-testid=key-requests]"), /No requests/);
    assert.equal(await page.getAttribute("[data-testid=rule-block]", "data-kind"), "tokens");
    assert.deepEqual(problems, [], "no CSP violations or page errors");
  });
});
