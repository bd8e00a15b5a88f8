// Marks the compiled command-line entry points executable after `tsc -b`, which writes them as
// plain files, so that they can also be run directly (a device's systemd unit does). The
// `fetchback`, `fetchback-agent` and `fetchback-sim` commands in node_modules/.bin point at the
// packages' bin/ launchers, which exist before the first build.
import { chmodSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bins = [
  'update-server/dist/cli/main.js',
  'device-agent/dist/cli.js',
  'simulator/dist/cli.js',
];
for (const bin of bins) {
  const path = fileURLToPath(new URL(`../${bin}`, import.meta.url));
  if (existsSync(path)) chmodSync(path, 0o755);
}
