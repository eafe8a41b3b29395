// Drives Debian's Chromium (headless, through playwright-core) for tests/test_browser.py.
//
//   node tests/browser/drive.mjs <config.json>
//
// config: {"phase": "approve" | "outcome" | "render", "card": path, "screenshots": dir,
//          "status_url": url (outcome phase)}
// Prints one JSON object on stdout: what the browser saw. Cards are rendered by the official
// Adaptive Cards JavaScript SDK (node_modules/adaptivecards), which also validates them: its
// parser reports every property and element it does not accept, and validateProperties()
// every rule of the schema the card breaks. TextBlocks and FactSets are rendered through Markdown
// (markdown-it, CommonMark with HTML off), as Teams does, so what failure text could turn into a
// link or emphasis shows here as it would there.
import { readFileSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const sdk = readFileSync(join(root, "node_modules", "adaptivecards", "dist", "adaptivecards.min.js"), "utf8");
const markdown = readFileSync(join(root, "node_modules", "markdown-it", "dist", "markdown-it.min.js"), "utf8");
mkdirSync(config.screenshots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
const out = {};

async function renderCard(file, shot) {
  const message = JSON.parse(readFileSync(file, "utf8"));
  const card = message.attachments[0].content;
  await page.setContent("<!doctype html><html><head><meta charset='utf-8'></head>"
    + "<body style='font-family:Segoe UI,system-ui,sans-serif;background:#f5f5f5;padding:16px'>"
    + "<div id='card' style='background:white;max-width:560px;padding:8px'></div></body></html>");
  await page.addScriptTag({ content: sdk });
  await page.addScriptTag({ content: markdown });
  const seen = await page.evaluate((json) => {
    const AC = window.AdaptiveCards;
    const md = window.markdownit("commonmark", { html: false });
    AC.AdaptiveCard.onProcessMarkdown = (text, result) => {
      result.outputHtml = md.render(text);
      result.didProcess = true;
    };
    const card = new AC.AdaptiveCard();
    const context = new AC.SerializationContext();
    card.parse(json, context);
    const events = [];
    for (let i = 0; i < context.eventCount; i++) {
      const e = context.getEventAt(i);
      events.push({ phase: e.phase, event: e.event, message: e.message });
    }
    const failures = card.validateProperties().validationEvents.map((e) => ({
      phase: e.phase, event: e.event, message: e.message }));
    window.__opened = [];
    card.onExecuteAction = (action) => window.__opened.push({ title: action.title, url: action.url });
    document.getElementById("card").appendChild(card.render());
    return { events, failures,
             buttons: [...document.querySelectorAll("#card button")].map((b) => b.textContent.trim()),
             links: [...document.querySelectorAll("#card a")].map((a) => a.href),
             text: document.getElementById("card").innerText };
  }, card);
  await page.screenshot({ path: join(config.screenshots, shot), fullPage: true });
  return seen;
}

if (config.phase === "approve") {
  out.card = await renderCard(config.card, "1-approval-card.png");
  // A person clicks Approve on the card: the card opens its link (Action.OpenUrl).
  await page.click("#card button:has-text('Approve')");
  const opened = await page.evaluate(() => window.__opened);
  out.opened = opened;
  await page.goto(opened[0].url);
  out.confirmation = { status: 200, text: await page.innerText("body"), title: await page.title() };
  await page.screenshot({ path: join(config.screenshots, "2-confirmation-page.png"), fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click("#decide")]);
  out.decided = { text: await page.innerText("body"),
                  operation: await page.$eval("#operation", (el) => el.textContent).catch(() => null) };
  await page.screenshot({ path: join(config.screenshots, "3-decision-recorded.png"), fullPage: true });
  // The link again (a replay, or a second approver): refused, nothing decided twice.
  await page.goto(opened[0].url);
  out.replay = { text: await page.innerText("body") };
  await page.screenshot({ path: join(config.screenshots, "4-link-used-again.png"), fullPage: true });
} else if (config.phase === "render") {
  out.card = await renderCard(config.card, "7-hostile-text-card.png");
} else {
  const response = await page.goto(config.status_url);
  out.status = { http: response.status(), body: JSON.parse(await page.innerText("body")) };
  await page.screenshot({ path: join(config.screenshots, "5-operation-status.png"), fullPage: true });
  out.card = await renderCard(config.card, "6-outcome-card.png");
}
await browser.close();
process.stdout.write(JSON.stringify(out));
