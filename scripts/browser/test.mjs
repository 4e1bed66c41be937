// The browser test: Debian's Chromium, driven by playwright-core, against the real API and
// worker started by the Rust test that runs this script (worker/tests/pipeline/web.rs).
// Environment: MINUTES_WEB_BASE (the API), MINUTES_WEB_FIXTURES (fixtures folder),
// MINUTES_WEB_LONG (a recording long enough to reload mid-way), MINUTES_WEB_ARTIFACTS
// (where screenshots go), MINUTES_NODE_MODULES (where playwright-core is installed),
// MINUTES_WEB_EMAIL and MINUTES_WEB_PASSWORD (a user to sign in as). Exits non-zero with a
// message on the first failed check.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// ES modules ignore NODE_PATH: load playwright-core from the folder the test command
// installed it into.
const require = createRequire(join(process.env.MINUTES_NODE_MODULES, "resolve-here.js"));
const { chromium } = require("playwright-core");

const base = process.env.MINUTES_WEB_BASE;
const fixtures = process.env.MINUTES_WEB_FIXTURES;
const long = process.env.MINUTES_WEB_LONG;
const artifacts = process.env.MINUTES_WEB_ARTIFACTS;
const email = process.env.MINUTES_WEB_EMAIL;
const password = process.env.MINUTES_WEB_PASSWORD;
mkdirSync(artifacts, { recursive: true });

async function signIn(page, path, withMistake) {
  await page.goto(base + path);
  check(/\/login\?next=/.test(page.url()), "a stranger is sent to the sign-in page (" + page.url() + ")");
  if (withMistake) {
    await page.fill("#email", email);
    await page.fill("#password", "not the password");
    await page.click("#signin");
    await page.waitForSelector("#error");
    check(/wrong/.test(await page.textContent("#error")), "a wrong password is refused in plain words");
    await page.screenshot({ path: join(artifacts, "0-sign-in-refused.png"), fullPage: true });
  }
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(base + path), page.click("#signin")]);
  check(page.url() === base + path, "signed in, back at " + path);
}

function check(condition, message) {
  if (!condition) throw new Error("check failed: " + message);
  console.log("ok: " + message);
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on("pageerror", (error) => { throw new Error("script error on the page: " + error.message); });

  // Signing in: every page sends a stranger to the sign-in page; a wrong password is
  // refused in plain words; the right one leads back to the page asked for.
  await signIn(page, "/", true);
  await page.screenshot({ path: join(artifacts, "0-signed-in.png"), fullPage: true });

  // The upload page: every control labelled, keyboard reachable.
  await page.goto(base + "/");
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input:not([type=hidden]), select")].filter((c) => !document.querySelector(`label[for="${c.id}"]`)).map((c) => c.name));
  check(unlabelled.length === 0, "every control on the upload page has a label " + JSON.stringify(unlabelled));
  const visited = [];
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press("Tab");
    visited.push(await page.evaluate(() => document.activeElement && (document.activeElement.id || document.activeElement.textContent)));
  }
  const order = ["file", "title", "email", "language", "submit"].map((id) => visited.indexOf(id));
  check(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1])), "Tab reaches file, title, email, language and the button in order (" + visited.join(", ") + ")");
  await page.screenshot({ path: join(artifacts, "1-upload.png"), fullPage: true });

  // A renamed non-audio file: the server's refusal is shown.
  await page.setInputFiles("#file", join(fixtures, "bad/notes.mp3"));
  await page.click("#submit");
  await page.waitForFunction(() => document.getElementById("error").textContent.length > 0);
  const refusal = await page.textContent("#error");
  check(/not a supported recording/.test(refusal), "a renamed text file is refused: " + refusal);
  await page.screenshot({ path: join(artifacts, "2-refused.png"), fullPage: true });

  // A recording cut short: accepted, then the job fails; the page says why and offers Retry.
  await page.goto(base + "/");
  await page.setInputFiles("#file", join(fixtures, "bad/truncated.flac"));
  await page.click("#submit");
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/, { timeout: 60000 });
  await page.waitForSelector("#reason", { timeout: 120000 });
  const reason = await page.textContent("#reason");
  check(/incomplete/.test(reason), "a failed job explains itself: " + reason);
  check(await page.isVisible("#retry"), "a failed job offers Retry");
  await page.screenshot({ path: join(artifacts, "7-failed.png"), fullPage: true });
  await page.click("#retry");
  await page.waitForSelector("#reason", { timeout: 120000 });
  check(/\/jobs\//.test(page.url()), "Retry runs the job again and comes back to its page");

  // A spoken recording, through to the minutes.
  await page.goto(base + "/");
  await page.setInputFiles("#file", join(fixtures, "meeting.flac"));
  await page.fill("#title", "Budget planning");
  await page.click("#submit");
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/, { timeout: 60000 });
  await page.waitForSelector("#downloads", { timeout: 180000 });
  check((await page.textContent("#state")) === "Done", "the job page says Done");
  check(Number(await page.getAttribute("#job-bar", "value")) === 100, "the progress bar reached 100%");
  const done = await page.$$eval("#timeline li", (items) => items.map((i) => i.className));
  check(done.every((c) => c === "done"), "every stage of the timeline is done");
  const summary = await page.textContent("#summary");
  check(summary.length > 20, "the summary is on the page");
  check((await page.$$("#decisions li")).length > 0, "decisions are on the page");
  check(/\[\d\d:\d\d:\d\d\]/.test(await page.textContent("#decisions")), "decisions carry their timestamps");
  await page.screenshot({ path: join(artifacts, "3-done.png"), fullPage: true });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("text=Minutes (PDF)")]);
  const pdf = join(artifacts, "minutes.pdf");
  await download.saveAs(pdf);
  const text = execFileSync("pdftotext", [pdf, "-"]).toString();
  check(text.includes("Budget planning") && /budget/i.test(text) && text.includes("Action items"), "the downloaded PDF holds the minutes");

  // Versions: reprocess the job with a new title (the API, with this session), see both
  // versions listed on the page, then restore version 1.
  const jobUrl = page.url();
  const jobId = jobUrl.split("/").pop();
  const csrf = await page.getAttribute('meta[name="csrf-token"]', "content");
  const asked = await page.evaluate(async ([id, token]) => {
    const response = await fetch("/api/v1/jobs/" + id + "/reprocess", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify({ from: "summarize", title: "Budget planning (revised)" }),
    });
    return response.status;
  }, [jobId, csrf]);
  check(asked === 202, "a reprocess is accepted (" + asked + ")");
  const outcomeOf2 = () => page.evaluate(() => (document.querySelector("#version-2 .outcome") || {}).textContent);
  for (let i = 0; i < 240 && (await outcomeOf2()) !== "current"; i++) {
    await page.waitForTimeout(500);
    await page.goto(jobUrl);
  }
  check((await outcomeOf2()) === "current", "the reprocess made version 2 current");
  check((await page.textContent("#version-1 .outcome")) === "ready", "the job page lists version 1 beside the new current version 2");
  check((await page.textContent("#downloads-h")).includes("version 2"), "the downloads are version 2's");
  check((await page.textContent("h1")).includes("revised"), "the page shows the new version's title");
  await page.screenshot({ path: join(artifacts, "9-versions.png"), fullPage: true });
  await Promise.all([page.waitForURL(jobUrl), page.click("#restore-1")]);
  check((await page.textContent("#version-1 .outcome")) === "current", "Restore makes version 1 current again");
  check((await page.textContent("#downloads-h")).includes("version 1"), "the downloads are version 1's again");
  check(!(await page.textContent("h1")).includes("revised"), "the page names the meeting as version 1 does");
  const [restored] = await Promise.all([page.waitForEvent("download"), page.click("text=Minutes (PDF)")]);
  const restoredPdf = join(artifacts, "minutes-restored.pdf");
  await restored.saveAs(restoredPdf);
  const restoredText = execFileSync("pdftotext", [restoredPdf, "-"]).toString();
  check(!restoredText.includes("revised") && restoredText.includes("Budget planning"), "the restored PDF is version 1's");
  await page.screenshot({ path: join(artifacts, "10-restored.png"), fullPage: true });

  // Phone width: nothing wider than the screen.
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  check(overflow <= 375, "the job page fits a phone-width screen (" + overflow + " px)");
  await page.screenshot({ path: join(artifacts, "4-done-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 900 });

  // A long recording: reload the page mid-way and see the progress carry on.
  await page.goto(base + "/");
  await page.setInputFiles("#file", long);
  await page.fill("#title", "Long meeting");
  await page.click("#submit");
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/, { timeout: 60000 });
  await page.waitForSelector('#timeline li.current[data-stage="transcribe"]', { timeout: 120000 });
  await page.reload();
  const stage = await page.getAttribute("#timeline li.current", "data-stage");
  check(stage === "transcribe" || stage === "summarize" || stage === "render", "after a reload the page shows the running stage (" + stage + ")");
  await page.screenshot({ path: join(artifacts, "5-reloaded-mid-way.png"), fullPage: true });
  await page.waitForSelector("#downloads", { timeout: 300000 });
  check((await page.textContent("#state")) === "Done", "the reloaded page followed the job to Done");

  // Recent jobs.
  await page.goto(base + "/jobs");
  const rows = await page.$$("#jobs tbody tr");
  check(rows.length >= 2, "the recent jobs page lists the jobs");
  await page.screenshot({ path: join(artifacts, "6-jobs.png"), fullPage: true });

  // Without JavaScript: the form still uploads and the links still download.
  const plain = await browser.newContext({ javaScriptEnabled: false });
  const noScript = await plain.newPage();
  await signIn(noScript, "/", false);
  await noScript.goto(base + "/");
  await noScript.setInputFiles("#file", join(fixtures, "formats/hello_44k.flac"));
  await noScript.click("#submit");
  await noScript.waitForURL(/\/jobs\/[0-9a-f-]{36}$/, { timeout: 60000 });
  check(/\/jobs\//.test(noScript.url()), "without JavaScript the form leads to the job page");
  await plain.close();
  // Settings: make an API token; it is shown once, then listed without its secret.
  await page.goto(base + "/settings");
  await page.fill("#token-name", "laptop");
  await page.click("#create-token");
  const secret = await page.textContent("#new-token");
  check(/^mnt_/.test(secret), "the settings page makes a token and shows it once");
  await page.screenshot({ path: join(artifacts, "8-settings-token.png"), fullPage: true });
  await page.goto(base + "/settings");
  check(!(await page.content()).includes(secret) && (await page.textContent("#tokens")).includes("laptop"), "afterwards the token is listed without its secret");

  // Signing out ends the session: the pages ask for sign-in again.
  await page.click("#signout");
  await page.waitForURL(/\/login/);
  await page.goto(base + "/jobs");
  check(/\/login\?next=/.test(page.url()), "after signing out the pages ask for sign-in again");
  writeFileSync(join(artifacts, "README.txt"), "Screenshots of the browser test: 0 signed in, 1 upload page, 2 a refused file, 3 minutes done, 4 the same on a phone, 5 a page reloaded mid-way, 6 recent jobs, 7 a failed job with its reason and Retry, 8 a token made on the settings page, 9 a job's versions after a reprocess, 10 version 1 restored (0-sign-in-refused: a wrong password).\n");
} finally {
  await browser.close();
}
