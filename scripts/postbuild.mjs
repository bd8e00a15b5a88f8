// Marks the packages' command-line entry points executable after `tsc -b`, which writes them
// as plain files. npm links `fetchback`, `fetchback-agent` and `fetchback-sim` into
// node_modules/.bin at install time, before the first build exists.
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
