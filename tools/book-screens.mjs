// Render pages of the built book in headless Chromium (Debian's `chromium`, driven by
// puppeteer-core) at a given window width, keep a screenshot of each, and check what a reader
// must see: every column of every table visible without scrolling sideways, and every diagram's
// text at least 10 px high as drawn.
//
// Usage: node tools/book-screens.mjs BOOK_DIR OUT_DIR WIDTH PAGE...
//   (PAGE relative to BOOK_DIR, e.g. matrix.html). Exit status 1 when a check fails (each failure
//   names the page, the table and the column, or the diagram), 2 when a page cannot be rendered.
// puppeteer-core is resolved from target/docs-tools (`just book-screens` installs it there).

import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const [book, out, width, ...pages] = process.argv.slice(2);
if (!book || !out || !width || pages.length === 0) {
    console.error("usage: node tools/book-screens.mjs BOOK_DIR OUT_DIR WIDTH PAGE...");
    process.exit(2);
}
const require = createRequire(path.resolve("target/docs-tools/package.json"));
const puppeteer = require("puppeteer-core");
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
const MIN_TEXT_PX = 10;

fs.mkdirSync(out, { recursive: true });
const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"],
});
let failures = 0;
try {
    for (const page of pages) {
        const file = path.resolve(book, page);
        if (!fs.existsSync(file)) {
            console.error(`book-screens: ${page}: no such page in ${book}`);
            process.exit(2);
        }
        const tab = await browser.newPage();
        await tab.setViewport({ width: Number(width), height: 1000 });
        await tab.goto("file://" + file, { waitUntil: "load", timeout: 60000 });
        // The diagrams are drawn by mermaid once the page has loaded.
        if (await tab.$("pre.mermaid")) {
            await tab.waitForSelector("pre.mermaid svg", { timeout: 60000 });
        }
        const found = await tab.evaluate((minText) => {
            const problems = [];
            const view = document.documentElement.clientWidth;
            document.querySelectorAll("main table").forEach((table, t) => {
                const heading = table.closest(".table-wrapper")?.previousElementSibling?.textContent?.trim() ?? "";
                const cells = table.querySelectorAll("thead th");
                cells.forEach((th) => {
                    const r = th.getBoundingClientRect();
                    if (r.right > view + 0.5 || r.left < -0.5 || r.width < 1) {
                        problems.push(
                            `table ${t + 1}${heading ? ` (after "${heading.slice(0, 40)}")` : ""}: column ` +
                                `"${th.textContent.trim()}" is not in view (${Math.round(r.left)}-${Math.round(r.right)} px of ${view})`,
                        );
                    }
                });
            });
            let smallest = Infinity;
            document.querySelectorAll("pre.mermaid svg").forEach((svg, d) => {
                const texts = svg.querySelectorAll("text");
                texts.forEach((text) => {
                    if (!text.textContent.trim()) return;
                    // The drawn height of a line of text, whatever the scaling of the picture.
                    const size = parseFloat(getComputedStyle(text).fontSize);
                    const box = svg.getBoundingClientRect();
                    const vb = svg.viewBox && svg.viewBox.baseVal;
                    const scale = vb && vb.width ? box.width / vb.width : 1;
                    smallest = Math.min(smallest, size * scale);
                });
                if (smallest < minText) {
                    problems.push(`diagram ${d + 1}: text drawn ${smallest.toFixed(1)} px high, under ${minText} px`);
                }
            });
            return { problems, smallest: Number.isFinite(smallest) ? smallest : null };
        }, MIN_TEXT_PX);
        const shot = path.join(out, page.replace(/[\/]/g, "_").replace(/\.html$/, "") + `-${width}.png`);
        await tab.screenshot({ path: shot, fullPage: true });
        for (const p of found.problems) {
            console.log(`FAIL ${page} at ${width} px: ${p}`);
            failures += 1;
        }
        const text = found.smallest === null ? "" : `, diagram text at least ${found.smallest.toFixed(1)} px`;
        if (found.problems.length === 0) {
            console.log(`ok   ${page} at ${width} px: every column in view${text} (${shot})`);
        }
        await tab.close();
    }
} finally {
    await browser.close();
}
process.exit(failures ? 1 : 0);
