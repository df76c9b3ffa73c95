// The npm registry reachable here lacks some platform-specific optional packages (e.g.
// @swc/core-darwin-arm64), so `npm install` leaves them out of package-lock.json and `npm ci`
// then refuses the lockfile ("Missing: ... from lock file"). This adds an entry for each missing
// optional dependency, with the os/cpu of its name, so that `npm ci` sees a complete lockfile and
// skips those packages on this platform (it never fetches them).
// Run after `npm install`: node scripts/complete-lockfile.js
const fs = require('fs');
const path = require('path');
const file = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const pkgs = lock.packages;
const OS = ['darwin', 'linux', 'win32', 'freebsd', 'android', 'sunos', 'openbsd', 'netbsd', 'aix'];
const CPU = ['arm64', 'x64', 'ia32', 'arm', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'];
let added = 0;
for (const [where, meta] of Object.entries(pkgs)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies || {})) {
    const key = `node_modules/${dep}`;
    if (pkgs[key] || pkgs[`${where}/node_modules/${dep}`]) continue;
    const parts = dep.split('/').pop().split('-');
    const entry = { version, optional: true };
    const os = parts.find((p) => OS.includes(p));
    const cpu = parts.find((p) => CPU.includes(p));
    if (!os || !cpu) throw new Error(`cannot tell the platform of missing optional package ${dep}`);
    entry.os = [os];
    entry.cpu = [cpu];
    if (parts.includes('gnu') || parts.includes('gnueabihf')) entry.libc = ['glibc'];
    if (parts.includes('musl')) entry.libc = ['musl'];
    pkgs[key] = entry;
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)));
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`complete-lockfile: added ${added} platform-specific optional entries`);
