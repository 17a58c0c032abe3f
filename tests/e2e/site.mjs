// Loads a built registry site in headless Chromium, served on loopback under a sub-path, and
// checks what a person would: the index lists flags, typing in the search box filters the list,
// a flag page opens and shows its history; on a phone the page does not overflow sideways.
// Usage: node site.mjs SITE_DIR SCREENSHOT_DIR FLAG SEARCH_TERM
import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";

const [siteDir, shotDir, flag, term] = process.argv.slice(2);
const prefix = "/registry/";
const types = { ".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript", ".json": "application/json", ".xml": "application/atom+xml", ".svg": "image/svg+xml" };

const server = http.createServer((request, response) => {
  const url = new URL(request.url, "http://localhost");
  if (!url.pathname.startsWith(prefix)) { response.writeHead(404); response.end(); return; }
  const file = path.join(siteDir, decodeURIComponent(url.pathname.slice(prefix.length)) || "index.html");
  if (!file.startsWith(path.resolve(siteDir)) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) { response.writeHead(404); response.end(); return; }
  response.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" });
  fs.createReadStream(file).pipe(response);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}${prefix}`;

const failures = [];
const check = (condition, message) => { if (!condition) failures.push(message); };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("requestfailed", (request) => errors.push(`request failed: ${request.url()}`));
  await page.goto(base + "index.html");
  const visible = () => page.locator("#flags tbody tr:not([hidden])").count();
  const total = await visible();
  check(total > 1, `the index lists ${total} flags`);
  await page.fill("#search", term);
  await page.waitForFunction((n) => document.querySelectorAll("#flags tbody tr:not([hidden])").length < n, total);
  const filtered = await visible();
  check(filtered >= 1 && filtered < total, `searching for "${term}" left ${filtered} of ${total} rows`);
  check((await page.locator(`#flags tbody tr:not([hidden]) a:text-is("${flag}")`).count()) === 1, `the filtered list shows ${flag}`);
  check((await page.textContent("#count")).startsWith(String(filtered)), "the count follows the filter");
  fs.mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: path.join(shotDir, "index-search.png"), fullPage: true });

  await page.click(`#flags a:text-is("${flag}")`);
  await page.waitForSelector("#flag-name");
  check((await page.textContent("#flag-name")).includes(flag), "the flag page has the flag's name");
  const history = await page.locator("ol.history > li").count();
  check(history >= 1, `the flag page lists ${history} history entries`);
  check((await page.textContent("ol.history")).includes("created"), "the history says when the flag was created");
  check((await page.locator("svg.timeline rect").count()) >= 1, "the timeline chart is drawn");
  await page.screenshot({ path: path.join(shotDir, "flag.png"), fullPage: true });

  // Without JavaScript the index hides the filter form it cannot run, and the group and owner
  // pages filter instead.
  const noScript = await browser.newContext({ javaScriptEnabled: false });
  const plain = await noScript.newPage();
  await plain.goto(base + "index.html");
  check(!(await plain.isVisible("#filters")), "without JavaScript the filter form is hidden");
  await plain.click(`#flags tr[data-name="${flag}"] td:nth-child(3) a`);
  await plain.waitForSelector("h1");
  check((await plain.textContent("h1")).startsWith("Group"), "the group link opens the group's page");
  check((await plain.locator(`a:text-is("${flag}")`).count()) === 1, "the group page lists the flag");
  await noScript.close();

  const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await phone.goto(base + "flags/" + flag + ".html");
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `on a phone the flag page overflows by ${overflow}px`);
  await phone.screenshot({ path: path.join(shotDir, "flag-phone.png"), fullPage: true });
  check(errors.length === 0, `the pages reported errors: ${errors.join("; ")}`);
} finally {
  await browser.close();
  server.close();
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log("browser checks passed");
