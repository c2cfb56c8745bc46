// The console in headless Chromium against a running plant-monitor (started by tests/tests/console.rs,
// which passes its address and what it set up). Each step fails the run with what it saw instead;
// screenshots of each state go to $SCREENSHOTS.
//
//   BASE_URL, SCREENSHOTS, PLAYWRIGHT_DIR, CHROMIUM, FLAKY_SINK (a sink whose first request fails
//   and is a dead letter at once), node tests/console/console.test.mjs

import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";

const require = createRequire(`${process.env.PLAYWRIGHT_DIR}/`);
const { chromium } = require("playwright-core");

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOTS;
const flaky = process.env.FLAKY_SINK;
const WAIT = 20_000;

async function api(method, path, body, headers = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function until(what, probe, limit = WAIT) {
  const deadline = Date.now() + limit;
  let seen;
  for (;;) {
    seen = await probe();
    if (seen && seen.ok) return seen.value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${limit} ms; saw ${JSON.stringify(seen && seen.saw)}`);
    await sleep(50);
  }
}

const step = (name) => console.log(`- ${name}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => errors.push(`page: ${error.message}`));

  step("the page loads with its panels and no console errors");
  await page.goto(base);
  await page.waitForSelector("#stream-state.good", { timeout: WAIT });
  await page.locator("#instance", { hasText: "this replica" }).waitFor({ timeout: WAIT });
  await sleep(500);
  await page.screenshot({ path: `${shots}/1-loaded.png`, fullPage: true });
  if (errors.length) throw new Error(`errors on load:\n${errors.join("\n")}`);

  step("a plant created through the API shows in the live stream within 1 s");
  const viaApi = `Stream check ${Date.now()}`;
  await api("POST", "/v1/plants", { name: viaApi, region: "north", fuel: "wind", capacity_mw: 120 });
  const created = Date.now();
  await page.getByRole("cell", { name: viaApi, exact: true }).first().waitFor({ timeout: 1000 });
  step(`  shown after ${Date.now() - created} ms`);

  step("the region's lease shows with this replica as its holder");
  await page.locator("#lease-rows tr", { hasText: "north" }).locator(".badge.good").waitFor({ timeout: WAIT });

  step("a plant created through the form appears in the list and the journal");
  const viaForm = `Form plant ${Date.now()}`;
  await page.click("#plant-new");
  const form = page.locator("#plant-form");
  await form.locator('[name="name"]').fill(viaForm);
  await form.locator('[name="region"]').fill("north");
  await form.locator('[name="fuel"]').selectOption("solar");
  await form.locator('[name="capacity_mw"]').fill("250");
  await form.locator('[name="latitude"]').fill("47.5");
  await page.click("#plant-save");
  await page.locator("#plant-rows").getByRole("cell", { name: viaForm, exact: true }).waitFor({ timeout: WAIT });
  await page.locator("#stream-rows").getByRole("cell", { name: viaForm, exact: true }).first().waitFor({ timeout: WAIT });
  const journal = await api("GET", "/v1/changes?limit=1000");
  if (!journal.items.some((c) => c.kind === "created" && c.after && c.after.name === viaForm)) {
    throw new Error("the form's plant is not in the journal");
  }

  step("an invalid plant shows the 422 next to its fields");
  await page.click("#plant-new");
  await form.locator('[name="name"]').fill("Nowhere");
  await form.locator('[name="region"]').fill("Not A Region");
  await form.locator('[name="capacity_mw"]').fill("-3");
  await page.click("#plant-save");
  await page.locator("#plant-form-problem", { hasText: "422" }).waitFor({ timeout: WAIT });
  await page.locator(".field-error").first().waitFor({ timeout: WAIT });
  await page.screenshot({ path: `${shots}/2-invalid.png` });
  await page.click("#plant-cancel");

  step("a stale edit shows the 412");
  const row = page.locator("#plant-rows tr", { hasText: viaForm });
  await row.getByRole("button", { name: "Edit" }).click();
  const id = await row.getAttribute("data-id");
  await api("PATCH", `/v1/plants/${id}`, { output_mw: 99 });
  await form.locator('[name="name"]').fill(`${viaForm} renamed`);
  await page.click("#plant-save");
  await page.locator("#plant-form-problem", { hasText: "412" }).waitFor({ timeout: WAIT });
  await page.screenshot({ path: `${shots}/3-stale-edit.png` });
  await page.click("#plant-cancel");

  step("a dead letter is retried by a click and arrives");
  const dead = await until("two dead letters", async () => {
    const page_ = await api("GET", `/v1/deliveries?status=dead&sink=${flaky}`);
    return { ok: page_.items.length >= 2, value: page_.items, saw: page_ };
  });
  const delivered = (id) => until(`delivery ${id} delivered`, async () => {
    const page_ = await api("GET", `/v1/deliveries?status=delivered&sink=${flaky}`);
    return { ok: page_.items.some((d) => d.id === id), saw: page_ };
  });
  await page.locator("#dead-rows tr", { hasText: dead[0].plant_id }).getByRole("button", { name: "Retry" })
    .click({ timeout: WAIT });
  await delivered(dead[0].id);

  step("the dead letters matching a filter are counted, then retried in bulk, and arrive");
  let asked = "";
  page.once("dialog", (dialog) => {
    asked = dialog.message();
    dialog.accept();
  });
  await page.locator("#dead-filter").locator('[name="sink"]').fill(flaky);
  await page.click("#dead-bulk");
  await delivered(dead[1].id);
  if (!asked.includes("Retry 1 dead letters")) throw new Error(`the dry run asked: ${asked}`);

  step("a backfill's progress reaches 100 %");
  const backfill = page.locator("#backfill-form");
  await backfill.locator('[name="region"]').fill("north");
  await backfill.locator('[name="sinks"]').fill(flaky);
  await backfill.getByRole("button", { name: "Start backfill" }).click();
  await page.locator("#backfill-rows .backfill-progress", { hasText: "100 %" }).waitFor({ timeout: WAIT });

  await sleep(1500); // a chart refresh with the traffic above
  await page.screenshot({ path: `${shots}/4-after.png`, fullPage: true });
  // The 422 and the 412 above were provoked; Chromium logs every 4xx answer as a console error.
  const unexpected = errors.filter((e) => !/status of (412|422) /.test(e));
  if (unexpected.length) throw new Error(`errors while in use:\n${unexpected.join("\n")}`);
  step("done");
} finally {
  await browser.close();
}
