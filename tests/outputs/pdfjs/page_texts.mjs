// Prints the text of every page of a PDF as pdf.js gives it, as a JSON array of strings.
//
//     node page_texts.mjs FILE.pdf
//
// Each page's text is what Firefox's find bar searches and its "copy all" gives: the
// `str` of every item of `page.getTextContent({disableNormalization: true})` joined as
// they come, with a newline after an item whose `hasEOL` is set and nothing else (no
// space is ever added between items: where pdf.js saw a gap it made a " " item itself).
// That is pdf.js' own PDFFindController._extractText. pdf.js' legacy build runs on node 20
// (it carries the polyfills, Promise.withResolvers among them); no worker thread, no canvas.
import { readFile } from "node:fs/promises";

if (typeof Promise.withResolvers !== "function") {
  // Node 20 lacks it (node 22 has it); the legacy build polyfills it too, this is a guard.
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

// pdf.js warns through console.log: keep stdout for the JSON alone.
console.log = (...args) => console.error(...args);
if (typeof globalThis.DOMMatrix !== "function") {
  // pdf.js 5 builds one DOMMatrix when it loads (for its canvas renderer, which text
  // extraction never uses) and takes the class from @napi-rs/canvas in node: an inert
  // stand-in spares that native package.
  globalThis.DOMMatrix = class DOMMatrix {};
}

const { getDocument, VerbosityLevel } = await import("pdfjs-dist/legacy/build/pdf.mjs");

const [path] = process.argv.slice(2);
if (!path) {
  console.error("usage: node page_texts.mjs FILE.pdf");
  process.exit(2);
}
const data = new Uint8Array(await readFile(path));
const doc = await getDocument({
  data,
  verbosity: VerbosityLevel.ERRORS,
  useSystemFonts: false,
  isEvalSupported: false,
}).promise;
const pages = [];
for (let number = 1; number <= doc.numPages; number++) {
  const page = await doc.getPage(number);
  const content = await page.getTextContent({ disableNormalization: true });
  const parts = [];
  for (const item of content.items) {
    if (item.str !== undefined) parts.push(item.str);
    if (item.hasEOL) parts.push("\n");
  }
  pages.push(parts.join(""));
  page.cleanup();
}
await doc.destroy();
process.stdout.write(JSON.stringify(pages) + "\n");
