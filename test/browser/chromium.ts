/**
 * The browser every page test drives: Debian's headless Chromium
 * (`apt-get install chromium`; MEZU_CHROMIUM points elsewhere), started by
 * playwright-core, which downloads nothing.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.MEZU_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`browser tests need Chromium at ${CHROMIUM}: apt-get install -y chromium (or set MEZU_CHROMIUM)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    // No downloads of browsers here, and no network but loopback: keep Chromium from phoning home.
    // playwright-core gives each launch a fresh, empty --user-data-dir of its own (and removes it on close).
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
