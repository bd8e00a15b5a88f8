import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@fetchback/shared': src('./shared/src/index.ts'),
      '@fetchback/update-server': src('./update-server/src/index.ts'),
      '@fetchback/device-agent': src('./device-agent/src/index.ts'),
      '@fetchback/simulator': src('./simulator/src/index.ts'),
    },
  },
  test: {
    include: [
      '{shared,update-server,device-agent,simulator}/test/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
