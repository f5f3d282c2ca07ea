// Starts the real `keymanager dev` binary on free ports with a fresh state directory and reads
// the console URL and the one-time setup token from what it prints.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "..", "..", "..");

/** Path of the binary: $KEYMANAGER_BIN, else target/debug/keymanager (or $CARGO_TARGET_DIR). */
export function keymanagerBinary() {
  if (process.env.KEYMANAGER_BIN) return path.resolve(process.env.KEYMANAGER_BIN);
  const target = process.env.CARGO_TARGET_DIR
    ? path.resolve(repoRoot, process.env.CARGO_TARGET_DIR)
    : path.join(repoRoot, "target");
  return path.join(target, "debug", "keymanager");
}

/**
 * Starts `keymanager dev` and resolves once it printed its banner.
 * @returns {Promise<{url: string, setupToken: string, output: string[], stop: () => Promise<void>}>}
 */
export async function startKeymanager({ timeoutMs = 120_000 } = {}) {
  const stateDir = mkdtempSync(path.join(tmpdir(), "km-browser-"));
  const child = spawn(
    keymanagerBinary(),
    [
      "dev",
      "--state-dir", stateDir,
      "--listen", "127.0.0.1:0",
      "--emulator-listen", "127.0.0.1:0",
      "--bcrypt-cost", "4",
    ],
    { env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const output = [];
  const stderr = [];
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => stderr.push(chunk));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(stateDir, { recursive: true, force: true });
  };

  const ready = new Promise((resolve, reject) => {
    let buffer = "";
    let url = null;
    let setupToken = null;
    const timer = setTimeout(() => {
      reject(new Error(`keymanager dev printed no banner within ${timeoutMs} ms:\n${output.join("\n")}\n${stderr.join("")}`));
    }, timeoutMs);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        output.push(line);
        const plane = line.match(/control plane\s+(http:\/\/\S+)/);
        if (plane) url = plane[1].replace(/\/$/, "");
        const token = line.match(/setup token:\s*(\S+)/);
        if (token) setupToken = token[1];
        if (url && setupToken) {
          clearTimeout(timer);
          resolve({ url, setupToken });
        }
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`keymanager dev exited (${code ?? signal}) before it was ready:\n${output.join("\n")}\n${stderr.join("")}`));
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${keymanagerBinary()}: ${error.message}`));
    });
  });

  try {
    const { url, setupToken } = await ready;
    return { url, setupToken, output, stderr, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
