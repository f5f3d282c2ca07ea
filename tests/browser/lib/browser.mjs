// Headless Chromium from the Debian package, driven by playwright-core (which never downloads
// a browser). Flags: no sandbox (CI runs as root), nothing that phones home.

import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

export function chromiumPath() {
  const candidates = [process.env.CHROMIUM_BIN, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter(Boolean);
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new Error(`no Chromium found (tried ${candidates.join(", ")}); apt-get install chromium`);
  return found;
}

export async function launchChromium() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
