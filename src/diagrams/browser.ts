/**
 * Finds and starts the headless Chromium that renders and parses the diagrams. Puppeteer's own browser
 * download is skipped in this project, so the browser comes from the system: the path in
 * `PUPPETEER_EXECUTABLE_PATH`, `CHROMIUM_PATH` or `CHROME_PATH`, else the usual install locations
 * (Debian's `chromium` is `/usr/bin/chromium`).
 */
import { existsSync } from 'node:fs';
import puppeteer, { type Browser } from 'puppeteer';

export const BROWSER_ENV_VARS = ['PUPPETEER_EXECUTABLE_PATH', 'CHROMIUM_PATH', 'CHROME_PATH'] as const;

export const BROWSER_PATHS = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
] as const;

/** Flags for a quiet, offline, sandbox-less headless run (containers and CI have no user namespaces). */
export const BROWSER_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
] as const;

/** The browser executable to use, or undefined when none is found. */
export function findBrowser(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const name of BROWSER_ENV_VARS) {
    const p = env[name];
    if (p) return p;
  }
  return BROWSER_PATHS.find((p) => existsSync(p));
}

/** Start one headless browser; every diagram of a run is rendered in it. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = findBrowser();
  if (executablePath === undefined) {
    throw new Error(
      `no Chromium found: set ${BROWSER_ENV_VARS.join(' or ')} to a Chrome/Chromium executable ` +
        `(looked in ${BROWSER_PATHS.join(', ')})`,
    );
  }
  return puppeteer.launch({ executablePath, headless: true, args: [...BROWSER_ARGS] });
}
