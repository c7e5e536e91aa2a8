/**
 * Helpers of the browser tests: Debian's Chromium driven headless by puppeteer-core, a page
 * watched for anything that went wrong (console errors, failed requests, requests to any other
 * origin), and small waits on what the console shows.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { ROOT } from '../e2e/helpers.js';
import { waitFor } from '../support/wait.js';

/** Debian's `chromium` package, or FARAD_CHROMIUM. */
export function chromiumPath(): string {
  const path = process.env.FARAD_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(`no Chromium at ${path}: the browser tests need Debian's chromium package (apt-get install chromium), or FARAD_CHROMIUM naming the executable`);
  }
  return path;
}

/** Headless Chromium, closed (or killed, if closing hangs) when the test ends. */
export async function launchBrowser(t: TestContext): Promise<Browser> {
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
    timeout: 30_000,
    protocolTimeout: 60_000,
  });
  t.after(async () => {
    const closed = browser.close().then(() => true, () => false);
    const inTime = await Promise.race([closed, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000))]);
    if (!inTime) browser.process()?.kill('SIGKILL');
  });
  return browser;
}

/** What went wrong on a page: every console error, page error, failed request and request elsewhere. */
export interface PageWatch {
  readonly problems: string[];
  /** Requests made so far, as `METHOD path` (path with query string). */
  readonly requests: string[];
  /** A 4xx/5xx answer to `path` (with its query string) is the test's own doing: not a problem. */
  expectFailure(path: string): void;
}

export function watchPage(page: Page, origin: string): PageWatch {
  const problems: string[] = [];
  const requests: string[] = [];
  const expected = new Set<string>();
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const url = message.location().url ?? '';
    // Chromium logs every 4xx/5xx answer as "Failed to load resource"; the expected ones are not problems.
    if (/^Failed to load resource/.test(message.text()) && expected.has(url)) return;
    problems.push(`console error: ${message.text()} (${url})`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error instanceof Error ? error.message : String(error)}`));
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol === 'data:') return;
    requests.push(`${request.method()} ${url.pathname}${url.search}`);
    if (url.origin !== origin) problems.push(`request to another origin: ${request.method()} ${request.url()}`);
  });
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText ?? '?'}`));
  page.on('response', (response) => {
    if (response.status() >= 400 && !expected.has(response.url())) problems.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
  });
  return {
    problems,
    requests,
    expectFailure(path) {
      expected.add(`${origin}${path}`);
    },
  };
}

/** Polls a function evaluated in the page until it returns something truthy; fails naming `what`. */
export function waitInPage<T>(page: Page, what: string, probe: () => T | undefined | null | false, timeoutMs = 20_000): Promise<T> {
  return waitFor(what, async () => (await page.evaluate(probe)) ?? undefined, { timeoutMs, intervalMs: 200 }) as Promise<T>;
}

/** Each partition row's role and owner, as the page shows them. */
export function partitionRoles(page: Page): Promise<Array<{ partition: number; role: string; owner: string; standbys: string }>> {
  return page.$$eval('#partition-rows tr[data-partition]', (rows) =>
    rows.map((tr) => ({
      partition: Number(tr.getAttribute('data-partition')),
      role: tr.getAttribute('data-role') ?? '',
      owner: tr.querySelector('[data-owner]')?.getAttribute('data-owner') ?? '',
      standbys: (tr as HTMLTableRowElement).cells[3]?.textContent ?? '',
    })),
  );
}

/** Replaces an input's text, as a person would type it. */
export async function typeInto(page: Page, selector: string, text: string): Promise<void> {
  await page.$eval(selector, (el) => ((el as HTMLInputElement).value = ''));
  await page.type(selector, text);
}

/** Shows one of the console's views (`#/tables`) and waits until it is visible. */
export async function showView(page: Page, view: 'overview' | 'tables' | 'queries' | 'send'): Promise<void> {
  await page.click(`a[data-view-link="${view}"]`);
  await page.waitForSelector(`[data-view="${view}"]:not([hidden])`);
}

/** With FARAD_CONSOLE_SCREENSHOTS=1, a screenshot of the page into docs/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.FARAD_CONSOLE_SCREENSHOTS !== '1') return;
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'docs', `${name}.png`) as `${string}.png`, fullPage: true });
}
