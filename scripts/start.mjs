#!/usr/bin/env node
// `npm start`: builds every workspace (npx tsc -b) when the update server's dist is missing or
// older than any source, then runs `fetchback server` with the given arguments, forwarding
// SIGINT/SIGTERM to it and exiting with its exit code.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'update-server', 'dist', 'cli', 'main.js');
const sourceDirs = ['shared/src', 'update-server/src', 'device-agent/src', 'simulator/src'].map(
  (d) => join(root, d),
);

function newestMtimeMs(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const mtime = entry.isDirectory() ? newestMtimeMs(path) : statSync(path).mtimeMs;
    newest = Math.max(newest, mtime);
  }
  return newest;
}

function needsBuild() {
  if (!existsSync(entry)) return true;
  const buildInfo = join(root, 'update-server', 'dist', '.tsbuildinfo');
  const built = Math.max(
    statSync(entry).mtimeMs,
    existsSync(buildInfo) ? statSync(buildInfo).mtimeMs : 0,
  );
  return sourceDirs.some((dir) => existsSync(dir) && newestMtimeMs(dir) > built);
}

if (needsBuild()) {
  console.error('start: building (npm run build)');
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0 || !existsSync(entry)) {
    console.error('start: the build failed; see the errors above');
    process.exit(build.status || 1);
  }
}

const child = spawn(process.execPath, [entry, 'server', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => {
  process.exit(code ?? (signal ? 128 : 1));
});
