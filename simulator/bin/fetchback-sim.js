#!/usr/bin/env node
// `fetchback-sim`: runs the compiled CLI in dist/. This file exists before the first build, so npm
// links the command into node_modules/.bin at install time; until `npm run build` has run it
// says so instead of failing with a missing-module trace.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('fetchback-sim: not built yet; run `npm run build` at the repository root first');
  process.exit(1);
}
await import(cli.href);
