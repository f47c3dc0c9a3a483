// Drives index.html in headless Chromium (the distribution's /usr/bin/chromium; nothing is
// downloaded): enrolls the given images, predicts the queries, prints the results as JSON and
// saves a screenshot; "shown" is what the page displays for the last query. With "uploads" in CASE.json it uses the page's file inputs instead.   node drive.js URL CASE.json SCREENSHOT.png
'use strict';
const fs = require('fs');
const { launch } = require('./browser');

(async () => {
  const [url, casePath, screenshot] = process.argv.slice(2);
  const data = JSON.parse(fs.readFileSync(casePath, 'utf8'));
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 860, height: 520 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await page.evaluate(() => window.anilEdge.ready);
    let results;
    if (data.uploads) { // as a user does it: photo files into the page's inputs, then a photo as the query
      for (const [label, files] of Object.entries(data.uploads)) {
        await page.fill('#label', label);
        await page.setInputFiles(data.camera ? '#camera' : '#upload', files);
        await page.waitForFunction((l) => document.getElementById('classes').textContent.includes(l + ':'), label);
      }
      await page.click('#enroll');
      await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('enrolled'));
      await page.setInputFiles('#query', data.query_file);
      await page.waitForFunction(() => document.getElementById('answer').textContent.startsWith('→'));
      results = [await page.textContent('#answer')];
    } else {
      results = await page.evaluate(({ classes, queries, reject }) =>
        window.anilEdge.enrollAndPredict(classes, queries, reject === undefined ? null : reject), data);
    }
    if (screenshot) await page.screenshot({ path: screenshot });
    const shown = await page.evaluate(() => ({ answer: document.getElementById('answer').textContent,
      detail: document.getElementById('detail').textContent, probability_rows: document.querySelectorAll('#probs td').length / 2 }));
    process.stdout.write(JSON.stringify({ results, errors, shown }) + '\n');
  } finally {
    await browser.close();
  }
})().catch((err) => { process.stderr.write(`drive: ${err.stack || err}\n`); process.exit(1); });
