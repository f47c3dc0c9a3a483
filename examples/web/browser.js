// Headless Chromium for the page's drivers (drive.js, walkthrough.js): the distribution's
// /usr/bin/chromium (or $CHROMIUM); nothing is downloaded.
'use strict';
const { chromium } = require('playwright-core');

exports.launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
