// `pnpm test` needs a real browser for the control center's test: Debian's Chromium at
// /usr/bin/chromium. When it is missing and this process may install packages (root with
// apt-get, as on CI), it installs it; otherwise it says how, and the browser test fails.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CHROMIUM = '/usr/bin/chromium';
const log = (line) => console.log(`[chromium] ${line}`);

if (existsSync(CHROMIUM)) process.exit(0);
const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
if (!canInstall) {
  log(`${CHROMIUM} is missing and this user cannot install it: run \`apt-get install -y chromium\` as root`);
  process.exit(0);
}
const apt = (...args) => execFileSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
log('installing Debian\'s chromium for the browser test (first run only)...');
try {
  apt('install', '-y', '--no-install-recommends', 'chromium');
} catch {
  // A fresh machine may have no package lists yet.
  apt('update');
  apt('install', '-y', '--no-install-recommends', 'chromium');
}
log(`installed: ${existsSync(CHROMIUM) ? CHROMIUM : 'not found after install'}`);
