// Portal pages as a browser loads them: the bench data set of
// bench_pages.rs (1,000 extensions, 100 parked calls, ...) served by its
// --serve mode, each page loaded 10 times in headless Chromium through
// playwright-core (tests/browser/node_modules); reports navigation start to
// the load event (HTML, CSS and script fetched, page rendered).
// Run: bench/portal/run.sh --browser
import { spawn } from "node:child_process";
import readline from "node:readline";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(path.join(root, "tests/browser/package.json"));
const { chromium } = require("playwright-core");

const server = spawn(path.join(root, "target/release/examples/bench_pages"), ["--serve"], { stdio: ["ignore", "pipe", "inherit"] });
const ready = await new Promise((resolve, reject) => {
  readline.createInterface({ input: server.stdout }).on("line", (l) => { if (l.startsWith("READY ")) resolve(l.split(" ").slice(1)); else console.log(l); });
  server.once("exit", (c) => reject(new Error(`bench server exited ${c}`)));
});
const [base, tenant, group, cookie] = ready;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
let worst = 0;
try {
  const ctx = await browser.newContext();
  await ctx.addCookies([{ name: "orbit_session", value: cookie, url: `${base}/portal/` }]);
  const page = await ctx.newPage();
  const pages = ["extensions", "ring-groups", "call-park", `call-park/groups/${group}`, "phones", "live", "log"];
  console.log(`${"page".padEnd(40)} ${"median".padStart(8)} ${"max".padStart(8)}`);
  for (const p of pages) {
    const url = `${base}/portal/t/${tenant}/${p}`;
    const times = [];
    for (let i = 0; i < 11; i++) {
      await page.goto(url, { waitUntil: "load" });
      const ms = await page.evaluate(() => { const n = performance.getEntriesByType("navigation")[0]; return n.loadEventEnd - n.startTime; });
      if (i > 0) times.push(ms); // the first load warms the cache of CSS and script
    }
    times.sort((a, b) => a - b);
    worst = Math.max(worst, times[times.length - 1]);
    console.log(`${p.replace(group, "{group}").padEnd(40)} ${times[5].toFixed(1).padStart(6)}ms ${times[times.length - 1].toFixed(1).padStart(6)}ms`);
  }
  console.log(`slowest browser load: ${worst.toFixed(1)} ms (bar: 200 ms)`);
} finally {
  await browser.close();
  server.kill();
}
if (worst >= 200) process.exitCode = 1;
