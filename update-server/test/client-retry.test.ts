/**
 * The API client sends a request again, once, when its connection was closed under it
 * (`UND_ERR_SOCKET`): a busy client can reuse a kept-alive connection the server has just
 * closed for being idle. Played here by a real HTTP server that drops the first connection.
 */
import { once } from 'node:events';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

import { afterEach, describe, expect, it } from 'vitest';

import { FetchbackClient } from '../src/index.js';

let server: Server;
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** A server that closes the socket of its first request without answering. */
async function droppingFirst(): Promise<{ client: FetchbackClient; requests: () => number }> {
  let requests = 0;
  server = createServer((req, res) => {
    requests++;
    req.resume();
    if (requests === 1) {
      req.socket.destroy();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ status: 'ok' }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    client: new FetchbackClient({ url: `http://127.0.0.1:${port}` }),
    requests: () => requests,
  };
}

describe('FetchbackClient on a connection closed under it', () => {
  it('sends a GET and a JSON POST again on a new connection, once', async () => {
    const get = await droppingFirst();
    expect(await get.client.health()).toEqual({ status: 'ok' });
    expect(get.requests()).toBe(2);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));

    const post = await droppingFirst();
    await post.client.request('POST', '/api/v1/assignments', { json: { deviceIds: ['d'] } });
    expect(post.requests()).toBe(2);
  });

  it('does not send a streamed upload again: it fails with FB_ERR_SERVER_UNREACHABLE', async () => {
    const upload = await droppingFirst();
    await expect(
      upload.client.request('POST', '/api/v1/releases', {
        raw: { stream: Readable.from([Buffer.alloc(10)]), length: 10 },
      }),
    ).rejects.toMatchObject({ code: 'FB_ERR_SERVER_UNREACHABLE' });
    expect(upload.requests()).toBe(1);
  });
});
