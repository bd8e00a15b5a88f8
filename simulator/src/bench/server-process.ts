/**
 * A Fetchback server (embedded broker, temporary data directory) as a child process of a fleet
 * benchmark, so that the server's CPU and memory are measured apart from the simulator's.
 *
 *     node server-process.js '{"chunkBytes": 4096}'    # server option overrides, JSON
 *
 * Talks over the IPC channel: sends `{ type: 'ready', url, token, mqttPort }`; answers
 * `{ type: 'stats' }` with `{ type: 'stats', cpu, memory }` (process.cpuUsage and
 * process.memoryUsage); on `{ type: 'stop' }` closes the server and exits.
 */
import { startLocalServer } from '../local-server.js';

interface Request {
  readonly type: 'stats' | 'stop';
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('server-process needs an IPC channel (fork it)');
  const overrides = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
  const local = await startLocalServer(overrides);
  const send = (message: object) => process.send?.(message);
  process.on('message', (request: Request) => {
    if (request.type === 'stats') {
      send({ type: 'stats', cpu: process.cpuUsage(), memory: process.memoryUsage() });
    } else if (request.type === 'stop') {
      void local.close().finally(() => process.exit(0));
    }
  });
  process.on('disconnect', () => void local.close().finally(() => process.exit(0)));
  send({ type: 'ready', url: local.url, token: local.token, mqttPort: local.server.mqttPort });
}

main().catch((err: unknown) => {
  console.error(`server-process: ${(err as Error).message}`);
  process.exit(1);
});
