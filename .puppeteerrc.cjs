/**
 * Puppeteer must never download a browser here (there is no network beyond the package registries):
 * the diagrams are rendered with Debian's chromium (/usr/bin/chromium, or $PUPPETEER_EXECUTABLE_PATH).
 */
module.exports = { skipDownload: true };
