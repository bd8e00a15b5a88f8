// Each side of a single-device run on a core of its own, as a server and a device are in
// production: the bench process (server or baseline server) on CPU 0, the client process on
// CPU 1, with taskset(1) from util-linux. Unpinned, the two sides share both cores and each
// one's threads wake on the core the other is using.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

/** Why pinning cannot run here, or undefined when it can. */
export function cannotPin() {
  if (cpus().length < 2) return `${cpus().length} CPU`;
  const probe = spawnSync('taskset', ['-p', String(process.pid)], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'taskset(1) is not available';
  return undefined;
}

/** The command and arguments that start `args` on CPU 1 (taskset execs it: the pid is its). */
export function onClientCore(command, args) {
  return ['taskset', ['-c', '1', command, ...args]];
}

/** Runs `fn` with every thread of this process on CPU 0, then lets them use every CPU again. */
export async function onServerCore(fn) {
  setAffinity('0');
  try {
    return await fn();
  } finally {
    setAffinity(`0-${cpus().length - 1}`);
  }
}

function setAffinity(list) {
  const result = spawnSync('taskset', ['-a', '-p', '-c', list, String(process.pid)]);
  if (result.status !== 0) throw new Error(`taskset -a -p -c ${list} failed: ${result.stderr}`);
}
