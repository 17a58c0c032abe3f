// Benchmark, run by hand: how usable the index of a large site is in headless Chromium.
// Serves SITE_DIR on loopback, loads index.html RUNS times in a fresh page at 1366 x 900, and
// reports the median first contentful paint, the time until the filters are ready (search.json
// read), a search typed at once, the time until the whole page is loaded, and the time a search
// takes after that, from the keystroke to the next painted frame, for a few terms. docs/benchmarks.md records the results.
// Usage: node benches/site_browser.mjs SITE_DIR [RUNS]
// (the site of tests/it/site_browser.rs's 10,000 flags is left in target/e2e/sites/synthetic/public).
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/e2e/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const siteDir = path.resolve(process.argv[2] || "target/e2e/sites/synthetic/public");
const runs = Number(process.argv[3] || 5);
const types = { ".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript", ".json": "application/json" };
const server = http.createServer((request, response) => {
  const file = path.join(siteDir, decodeURIComponent(new URL(request.url, "http://localhost").pathname));
  if (!file.startsWith(siteDir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) { response.writeHead(404); response.end(); return; }
  response.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" });
  fs.createReadStream(file).pipe(response);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];
const terms = ["synthetic_flag_0999", "gitlab-org/gitlab", "25%", "nothing-matches-this"];
// Types `words` into the search box; resolves with the time until the next painted frame.
const measure = (words) => new Promise((resolve) => {
  const input = document.getElementById("search");
  const start = performance.now();
  input.value = words;
  input.dispatchEvent(new Event("input"));
  requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - start), 0));
});
const early = [], loaded = [];
const paints = [], ready = [], searches = Object.fromEntries(terms.map((term) => [term, []]));
try {
  for (let run = 0; run < runs; run++) {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    await page.goto(base + "index.html", { waitUntil: "commit" });
    await page.waitForFunction(() => document.querySelectorAll("#filter-group option").length > 1, null, { polling: 10, timeout: 120000 });
    ready.push(await page.evaluate(() => performance.now()));
    // The first search, typed as soon as the filters are ready, while the rows are still read.
    early.push(await page.evaluate(measure, terms[0]));
    await page.waitForLoadState("load");
    loaded.push(await page.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventStart));
    paints.push(await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0].startTime));
    await page.evaluate(() => { const input = document.getElementById("search"); input.value = ""; input.dispatchEvent(new Event("input")); });
    for (const term of terms) {
      const elapsed = await page.evaluate(measure, term);
      searches[term].push(elapsed);
      await page.evaluate(() => { const input = document.getElementById("search"); input.value = ""; input.dispatchEvent(new Event("input")); });
    }
    await page.close();
  }
} finally {
  await browser.close();
  server.close();
}
console.log(`site: ${siteDir} (${fs.statSync(path.join(siteDir, "index.html")).size} bytes of index.html), ${runs} runs, medians`);
console.log(`first contentful paint: ${median(paints).toFixed(0)} ms`);
console.log(`filters ready (search.json read): ${median(ready).toFixed(0)} ms`);
console.log(`first search "${terms[0]}" as soon as they are: ${median(early).toFixed(0)} ms to the next frame`);
console.log(`whole page loaded (load event): ${median(loaded).toFixed(0)} ms`);
console.log("after the load event:");
for (const term of terms) console.log(`search "${term}": ${median(searches[term]).toFixed(0)} ms to the next frame`);
