// Browser side of the VS Code end-to-end test: opens the code-server workbench in Debian's chromium through
// playwright-core (no browser download), waits for the driver's report, reads the OpenCode chat panel's DOM inside
// its webview frames, and takes the screenshot. usage: node pw.js <url> <report.json> <out.json> <shot.png> <done>
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');

const [url, report, out, shot, done] = process.argv.slice(2);
const expect = JSON.parse(process.env.E2E_EXPECT || '[]'); // texts the chat panel must show

(async () => {
  const res = { errors: [] };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(url);
    await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
    // while the driver works: a workspace edit that needs confirmation opens VS Code's Refactor Preview; apply it
    // the way a user does, with its Apply button
    for (let i = 0; i < 2400 && !fs.existsSync(report); i++) {
      // the extension's input box for a question (title "OpenCode: Ask"): type it like a user
      const input = page.locator('.quick-input-widget input.input');
      if (!res.typed && (await page.locator('.quick-input-widget .quick-input-title', { hasText: 'OpenCode: Ask' }).isVisible().catch(() => false))) {
        await input.fill(process.env.E2E_QUESTION || 'Why?');
        await input.press('Enter');
        res.typed = process.env.E2E_QUESTION || 'Why?';
      }
      const apply = page.locator('.bulk-edit-panel .monaco-button', { hasText: 'Apply' });
      if (!res.preview && (await apply.count().catch(() => 0)) > 0 && (await apply.first().isVisible().catch(() => false))) {
        res.preview = { text: await page.locator('.bulk-edit-panel').first().innerText().catch(() => '') };
        await page.screenshot({ path: shot.replace(/\.png$/, '-preview.png') }).catch(() => undefined);
        // changes that need confirmation start unchecked: tick them (the file's box ticks its edits), then Apply
        res.preview.checked = 0;
        for (let n = 0; n < 10; n++) {
          const box = page.locator('.bulk-edit-panel input.edit-checkbox:not(:checked):not([disabled])').first();
          if (!(await box.count().catch(() => 0))) break;
          await box.click();
          res.preview.checked++;
          await page.waitForTimeout(100);
        }
        await apply.first().click();
        res.preview.applied = true;
      }
      await page.waitForTimeout(100);
    }
    if (!fs.existsSync(report)) throw new Error('no report from the driver extension');

    // the chat panel lives in a webview: an iframe (VS Code's host page) holding another iframe (our document)
    let chat = null;
    for (let i = 0; i < 200 && !chat; i++) {
      for (const f of page.frames()) {
        const n = await f.locator('#threads').count().catch(() => 0);
        if (!n) continue;
        const text = await f.locator('#threads').innerText().catch(() => '');
        if (expect.every((e) => text.includes(e))) {
          chat = {
            text,
            html: await f.locator('#threads').innerHTML(),
            elements: await f.evaluate(() => ({
              scripts: [...document.querySelectorAll('script')].map((s) => s.getAttribute('src') || 'inline:' + s.textContent.slice(0, 80)),
              threadScripts: document.querySelectorAll('#threads script').length,
              img: document.querySelectorAll('#threads img').length,
              iframe: document.querySelectorAll('#threads iframe').length,
              strong: document.querySelectorAll('#threads .assistant strong').length,
              code: document.querySelectorAll('#threads .assistant code').length,
              links: [...document.querySelectorAll('#threads a')].map((a) => a.getAttribute('href')),
              csp: (document.querySelector('meta[http-equiv="Content-Security-Policy"]') || {}).content || null,
              title: document.title,
            })),
          };
          await f.evaluate(() => window.scrollTo(0, 0)); // the screenshot starts with the first answer
          break;
        }
      }
      if (!chat) await page.waitForTimeout(100);
    }
    res.chat = chat;
    res.problemsStatus = await page.locator('#status\\.problems').innerText().catch(() => null);
    res.statusBar = await page.locator('.statusbar-item', { hasText: 'OpenCode' }).first().innerText().catch(() => null);
    await page.waitForTimeout(500); // let the hover and the panel finish painting
    await page.screenshot({ path: shot });
    res.screenshot = shot;
  } catch (e) {
    res.errors.push(String((e && e.stack) || e));
  } finally {
    fs.writeFileSync(out, JSON.stringify(res, null, 2));
    fs.writeFileSync(done, 'done');
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
