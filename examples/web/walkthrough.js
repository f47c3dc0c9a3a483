// Walks index.html as a user does, in headless Chromium (the distribution's /usr/bin/chromium;
// nothing is downloaded), and prints what the page showed at each step as JSON: which step is
// highlighted, which controls are disabled and why, the answer, the pad's pixels, and every
// console error or uncaught exception.   node walkthrough.js URL CASE.json [SCREENSHOT.png]
// CASE.json: {"classes": {label: [image files]}, "query": image file, "reject": "" | "0.01" | "0.05",
//             "not_an_image": a file the page must refuse}
'use strict';
const fs = require('fs');
const { launch } = require('./browser');

const CONTROLS = ['add', 'upload', 'enroll', 'predict', 'query'];

async function observe(page) {
  return page.evaluate((controls) => {
    const text = (id) => document.getElementById(id).textContent.trim();
    return {
      steps: [...document.querySelectorAll('#steps li')].map((li) => li.className),
      disabled: Object.fromEntries(controls.map((id) => [id, document.getElementById(id).disabled])),
      why: { enroll: text('enroll-why'), predict: text('predict-why') },
      status: text('status'), answer: text('answer'), detail: text('detail'),
      probability_rows: document.querySelectorAll('#probs td').length / 2,
    };
  }, CONTROLS);
}

async function padPixel(page, x, y) {
  return page.evaluate(([px, py]) => Array.from(document.getElementById('pad').getContext('2d').getImageData(px, py, 1, 1).data), [x, y]);
}

(async () => {
  const [url, casePath, screenshot] = process.argv.slice(2);
  const data = JSON.parse(fs.readFileSync(casePath, 'utf8'));
  const browser = await launch();
  const seen = {};
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
    page.on('pageerror', (e) => errors.push(`uncaught: ${e}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`); });
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('model:'));
    seen.loaded = await observe(page);
    // buttons that cannot act: clicking them does nothing (and throws nothing)
    await page.evaluate(() => ['enroll', 'predict', 'add'].forEach((id) => document.getElementById(id).click()));
    seen.after_idle_clicks = await observe(page);
    for (const [label, files] of Object.entries(data.classes)) {
      await page.fill('#label', label);
      await page.setInputFiles('#upload', files);
      await page.waitForFunction((l) => document.getElementById('classes').textContent.includes(l + ':'), label);
    }
    seen.examples_added = await observe(page);
    await page.click('#enroll');
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('enrolled'));
    seen.enrolled = await observe(page);
    // a stroke on the pad: "classify the drawing" can act
    const box = await (await page.$('#pad')).boundingBox();
    await page.mouse.move(box.x + 60, box.y + 60);
    await page.mouse.down();
    await page.mouse.move(box.x + 160, box.y + 160, { steps: 8 });
    await page.mouse.up();
    seen.drawn = await observe(page);
    await page.selectOption('#reject', data.reject || '');
    await page.setInputFiles('#query', data.query);
    await page.waitForFunction(() => document.getElementById('answer').textContent.startsWith('→'));
    seen.classified = await observe(page);
    seen.pad = { top_centre: await padPixel(page, 112, 4), centre: await padPixel(page, 112, 112),
      left_middle: await padPixel(page, 3, 112) };
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    await page.setInputFiles('#upload', data.not_an_image);
    await page.waitForFunction(() => document.getElementById('status').className === 'error');
    seen.bad_file = await observe(page);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify({ seen, errors }) + '\n');
})().catch((err) => { process.stderr.write(`walkthrough: ${err.stack || err}\n`); process.exit(1); });
