/**
 * A real Mosquitto for the external-broker tests, on a free port with a generated config that
 * follows docs/external-broker.md: password file, ACL patterns keyed on the username, client id
 * bound to the username, Nagle off.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const PASSWD_BIN = process.env.MOSQUITTO_PASSWD_BIN ?? '/usr/bin/mosquitto_passwd';

export interface RunningMosquitto {
  readonly url: string;
  readonly port: number;
  /** Adds (or replaces) a user in the password file and makes Mosquitto reload it. */
  addUser(username: string, password: string): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts Mosquitto; throws with the reason when it cannot. */
export async function startMosquitto(serverPassword: string): Promise<RunningMosquitto> {
  if (!existsSync(MOSQUITTO_BIN) || !existsSync(PASSWD_BIN)) {
    throw new Error(`${MOSQUITTO_BIN} or ${PASSWD_BIN} not installed`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'fb-mosquitto-'));
  const passwd = join(dir, 'passwd');
  const acl = join(dir, 'acl');
  const conf = join(dir, 'mosquitto.conf');
  const port = await freePort();

  execFileSync(PASSWD_BIN, ['-b', '-c', passwd, 'fetchback-server', serverPassword]);
  writeFileSync(
    acl,
    [
      'user fetchback-server',
      'topic readwrite fb/v1/d/#',
      '',
      'pattern read fb/v1/d/%u/in/#',
      'pattern write fb/v1/d/%u/out/#',
      '',
    ].join('\n'),
  );
  writeFileSync(
    conf,
    [
      'per_listener_settings true',
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${passwd}`,
      `acl_file ${acl}`,
      'use_username_as_clientid true',
      'set_tcp_nodelay true',
      'persistence false',
      'log_dest stderr',
      // As root Mosquitto drops to the `mosquitto` user, who cannot read this temp dir.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      '',
    ].join('\n'),
  );

  const child: ChildProcess = spawn(MOSQUITTO_BIN, ['-c', conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`mosquitto exited ${code}: ${stderr}`))),
  );
  try {
    await Promise.race([waitForPort(port, 5000), exited]);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  exited.catch(() => undefined);

  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    async addUser(username, password) {
      execFileSync(PASSWD_BIN, ['-b', passwd, username, password]);
      child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 300));
    },
    async stop() {
      if (child.exitCode === null) {
        await new Promise<void>((r) => {
          child.once('exit', () => r());
          child.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
