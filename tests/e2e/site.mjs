// Loads a built registry site in headless Chromium, served on loopback under a sub-path, and
// checks what a person on call needs, at a phone's, a laptop's and a desktop's width:
// - no page overflows sideways (`scrollWidth <= innerWidth`);
// - on the index at 1366 px every row's production cell is on screen; on a phone each flag is a
//   card with its production state first;
// - search finds flags by an actor's path and by a state's words (`50%`), and the count follows;
// - a URL with filters reproduces them, and changing a filter writes it into the URL;
// - a rollout with 15-minute steps shows each step as its own visible stretch with its time;
// - without JavaScript the filter form is hidden and the group pages filter instead;
// - axe-core finds no serious or critical accessibility violation (when asked);
// - no script error and no failed request.
// Screenshots of the index, a flag page and an environment page at each width go to SHOT_DIR.
// Usage: node site.mjs CONFIG_JSON, where the JSON names `site`, `shots`, `label` and the checks'
// inputs (see tests/it/site.rs).
import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const config = JSON.parse(process.argv[2]);
const siteDir = path.resolve(config.site);
const prefix = "/registry/";
const types = { ".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript", ".json": "application/json", ".xml": "application/atom+xml", ".svg": "image/svg+xml" };

const server = http.createServer((request, response) => {
  const url = new URL(request.url, "http://localhost");
  if (!url.pathname.startsWith(prefix)) { response.writeHead(404); response.end(); return; }
  const file = path.join(siteDir, decodeURIComponent(url.pathname.slice(prefix.length)) || "index.html");
  if (!file.startsWith(siteDir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) { response.writeHead(404); response.end(); return; }
  response.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" });
  fs.createReadStream(file).pipe(response);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}${prefix}`;

const failures = [];
const check = (condition, message) => { if (!condition) failures.push(`${config.label}: ${message}`); };
const widths = [390, 1366, 1920];
const production = config.environment;
const flagPages = config.flags.map((name) => `flags/${name}.html`);
const pages = ["index.html", ...flagPages, `environments/${production}.html`, config.group_page];
fs.mkdirSync(config.shots, { recursive: true });
const shot = (page, name, width, fullPage) =>
  page.screenshot({ path: path.join(config.shots, `${config.label}-${name}-${width}.png`), fullPage });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const errors = [];
const open = async (width) => {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  page.on("pageerror", (error) => errors.push(String(error)));
  // A request cut short because the test moved on to the next page is not a failure.
  page.on("requestfailed", (request) => { if (request.failure()?.errorText !== "net::ERR_ABORTED") errors.push(`request failed: ${request.url()}: ${request.failure()?.errorText}`); });
  return page;
};
// The rows listed: every row of the full list, or, while a filter is set, those of the results.
const listed = "body.filtering #results tbody tr, body:not(.filtering) #flags tbody tr";
const visibleRows = (page) => page.locator(listed);
const shownNames = (page) => page.$$eval(listed, (rows) => rows.map((row) => row.dataset.name));
// The number of flags the count says match.
const counted = async (page) => parseInt(await page.textContent("#count"), 10);
try {
  for (const width of widths) {
    const page = await open(width);
    for (const relative of pages) {
      await page.goto(base + relative);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(overflow <= 0, `at ${width}px ${relative} overflows sideways by ${overflow}px`);
    }
    await page.goto(base + "index.html");
    await page.waitForSelector("#filters:not([hidden])");
    await shot(page, "index", width, false);
    if (width === 1366) {
      // Every row's production cell is on screen without scrolling sideways.
      const offscreen = await page.$$eval(`#flags tbody td[data-environment="${production}"]`, (cells) =>
        cells.filter((cell) => { const box = cell.getBoundingClientRect(); return box.left < 0 || box.right > window.innerWidth; }).length);
      const cells = await page.locator(`#flags tbody td[data-environment="${production}"]`).count();
      check(cells === config.count, `the index has ${cells} ${production} cells for ${config.count} flags`);
      check(offscreen === 0, `at 1366px ${offscreen} ${production} cells are off screen`);
    }
    if (width === 390) {
      // A card per flag: its name, then the production state before any other environment's.
      const order = await page.$eval("#flags tbody tr", (row) => {
        const cells = Array.from(row.querySelectorAll("td")).map((cell) => ({ env: cell.dataset.environment, top: cell.getBoundingClientRect().top, left: cell.getBoundingClientRect().left }));
        cells.sort((a, b) => a.top - b.top || a.left - b.left);
        const first = row.querySelector("td");
        return { first: cells[0].env, label: getComputedStyle(first, "::before").content === `"${first.dataset.environment}"` };
      });
      check(order.first === production, `on a phone the first state on a card is ${order.first}`);
      check(order.label, "on a phone each state on a card is labelled with its environment");
    }
    for (const relative of [flagPages[0], `environments/${production}.html`]) {
      await page.goto(base + relative);
      // The example's pages whole; the synthetic registry's production page lists 10,000 flags.
      const flagPage = relative.startsWith("flags/");
      await shot(page, flagPage ? "flag" : "environment", width, flagPage || config.label === "example");
    }
    await page.close();
  }

  const page = await open(1366);
  await page.goto(base + "index.html");
  await page.waitForSelector("#filters:not([hidden])");
  await page.waitForFunction(() => document.querySelectorAll("#filter-group option").length > 1);
  const total = await visibleRows(page).count();
  check(total === config.count, `the index lists ${total} of ${config.count} flags`);
  for (const { term, expect, reject } of config.searches) {
    await page.fill("#search", term);
    await page.waitForFunction(([selector, n]) => document.querySelectorAll(selector).length < n, [listed, total]);
    const names = await shownNames(page);
    check(names.includes(expect), `searching for "${term}" does not find ${expect}: ${names.slice(0, 10).join(", ")}`);
    if (reject) check(!names.includes(reject), `searching for "${term}" finds ${reject}`);
    const matches = await counted(page);
    check(names.length === Math.min(matches, 500), `the count says ${matches} flags match "${term}" and ${names.length} are listed`);
    check(new URL(page.url()).searchParams.get("q") === term, `the search for "${term}" is in the URL: ${page.url()}`);
  }
  await page.fill("#search", "");
  // Changing a filter writes it into the URL; opening that URL gives the same view.
  const filter = config.filter;
  await page.selectOption("#filter-type", filter.type);
  await page.selectOption("#filter-state", filter.state);
  await page.selectOption("#filter-environment", filter.env);
  const url = page.url();
  const narrowed = await shownNames(page);
  for (const [key, value] of [["type", filter.type], ["state", filter.state], ["env", filter.env]]) {
    check(new URL(url).searchParams.get(key) === value, `the filter ${key} is not in the URL: ${url}`);
  }
  check(narrowed.length >= 1 && narrowed.length < total, `the filters left ${narrowed.length} of ${total} flags`);
  const again = await open(1366);
  await again.goto(url);
  await again.waitForFunction(() => document.querySelectorAll("#filter-group option").length > 1);
  await again.waitForFunction(([selector, n]) => document.querySelectorAll(selector).length === n, [listed, narrowed.length], { timeout: 10000 }).catch(() => {});
  const reproduced = await shownNames(again);
  check(JSON.stringify(reproduced) === JSON.stringify(narrowed), `the URL ${url} shows ${reproduced.length} flags, not the ${narrowed.length} it was copied from`);
  check(await again.$eval("#filter-type", (select) => select.value) === filter.type, "the URL sets the type filter");
  check(await counted(again) === await counted(page), "the URL's view counts as many flags as the one it was copied from");
  const rowsMatch = await again.$$eval(listed, (rows, f) => rows.every((row) => row.dataset.type === f.type && row.querySelector(`td[data-environment="${f.env}"] .chip`).classList.contains(f.state)), filter);
  check(rowsMatch, "every flag the URL's filters show has the type and state asked for");
  await again.close();

  // The rollout with 15-minute steps: each step is its own visible stretch, with its time.
  const rollout = config.rollout;
  await page.goto(base + `flags/${rollout.flag}.html`);
  const stretches = await page.$$eval("#rollout-window rect.segment", (rects) => rects.map((rect) => ({ title: rect.querySelector("title").textContent, width: rect.getBoundingClientRect().width })));
  for (const [environment, time] of rollout.stretches) {
    const stretch = stretches.find((s) => s.title.startsWith(`${environment}:`) && s.title.includes(`from ${time}`));
    check(stretch, `the rollout window has no ${environment} stretch from ${time}: ${stretches.map((s) => s.title).join(" | ")}`);
    if (stretch) check(stretch.width >= 8, `the ${environment} stretch from ${time} is ${stretch.width}px wide`);
  }
  const now = await page.$eval("#timeline line.now", (line) => { const box = line.getBoundingClientRect(); return box.left >= 0 && box.right <= window.innerWidth; }).catch(() => false);
  check(now, "the timeline's now line is in view");
  const ticks = await page.locator("#timeline text.axis").count();
  check(ticks >= 2, `the timeline's axis has ${ticks} ticks`);

  // Without JavaScript the index hides the filter form it cannot run, and the group pages filter.
  const noScript = await browser.newContext({ javaScriptEnabled: false });
  const plain = await noScript.newPage();
  await plain.goto(base + "index.html");
  check(!(await plain.isVisible("#filters")), "without JavaScript the filter form is hidden");
  const flag = config.flags[0];
  await plain.click(`#flags tr[data-name="${flag}"] .meta a:nth-child(2)`);
  await plain.waitForSelector("h1");
  check((await plain.textContent("h1")).startsWith("Group"), "the group link opens the group's page");
  check((await plain.locator(`a:text-is("${flag}")`).count()) === 1, "the group page lists the flag");
  await noScript.close();

  if (config.axe) {
    const axe = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
    for (const relative of ["index.html", flagPages[0], `environments/${production}.html`]) {
      await page.goto(base + relative);
      await page.addScriptTag({ path: axe });
      const violations = await page.evaluate(async () => {
        const result = await window.axe.run(document, { resultTypes: ["violations"] });
        return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}, ${v.nodes.length}): ${v.nodes[0].target.join(" ")}`);
      });
      check(violations.length === 0, `axe finds on ${relative}: ${violations.join("; ")}`);
    }
  }
  check(errors.length === 0, `the pages reported errors: ${errors.join("; ")}`);
} finally {
  await browser.close();
  server.close();
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log(`${config.label}: browser checks passed`);
