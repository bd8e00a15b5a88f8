/**
 * The embedded broker's listeners: MQTT over TCP or TLS, and optionally MQTT over WebSocket.
 * Every accepted connection has Nagle's algorithm disabled (measured: a request/response round
 * trip otherwise stalls about 40 ms, and chunk fetching drops from hundreds of MB/s to a few)
 * and is wrapped in the packet-size guard before aedes reads it.
 */
import { readFileSync } from 'node:fs';
import { type Server as HttpServer, createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import {
  type AddressInfo,
  type Server,
  type Socket,
  createServer as createTcpServer,
} from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, createServer as createTlsServer } from 'node:tls';

import { fbError } from '@fetchback/shared';
import { WebSocketServer, createWebSocketStream } from 'ws';

import type { BusTlsOptions } from './message-bus.js';

/** Called with each accepted connection, Nagle off, and the TLS socket when there is one. */
export type Accept = (conn: Duplex, tlsSocket: TLSSocket | undefined) => void;

export interface Listener {
  readonly port: number;
  close(): Promise<void>;
}

function tlsMaterial(tls: BusTlsOptions) {
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
  };
}

/** Starts the MQTT listener (TLS when `tls` is given). */
export async function listenMqtt(
  host: string,
  port: number,
  tls: BusTlsOptions | undefined,
  accept: Accept,
): Promise<Listener> {
  let server: Server;
  if (tls) {
    const requireCert = tls.requireClientCert === true;
    server = createTlsServer(
      { ...tlsMaterial(tls), requestCert: requireCert, rejectUnauthorized: requireCert },
      (socket) => {
        socket.setNoDelay(true);
        accept(socket, socket);
      },
    );
  } else {
    server = createTcpServer((socket: Socket) => {
      socket.setNoDelay(true);
      accept(socket, undefined);
    });
  }
  // Connections that never sent CONNECT are unknown to aedes; close them here on shutdown.
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  await listenOn(server, host, port, 'MQTT');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      const closed = closeServer(server);
      for (const socket of open) socket.destroy();
      await closed;
    },
  };
}

/** Starts the MQTT-over-WebSocket listener (wss when `tls` is given). */
export async function listenWebSocket(
  host: string,
  port: number,
  tls: BusTlsOptions | undefined,
  maxPacketBytes: number,
  accept: Accept,
): Promise<Listener> {
  const http: HttpServer = tls ? createHttpsServer(tlsMaterial(tls)) : createHttpServer();
  // A WebSocket frame may carry several MQTT packets; the guard still checks each packet.
  const wss = new WebSocketServer({ server: http, maxPayload: maxPacketBytes + 1024 });
  wss.on('connection', (ws, req) => {
    (req.socket as Socket).setNoDelay(true);
    accept(createWebSocketStream(ws), undefined);
  });
  await listenOn(http, host, port, 'MQTT over WebSocket');
  return {
    port: (http.address() as AddressInfo).port,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await closeServer(http);
    },
  };
}

async function listenOn(server: Server, host: string, port: number, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          fbError('FB_ERR_CONFIG_INVALID', `${what} port ${port} on ${host} is already in use`),
        );
      } else if (err.code === 'EACCES') {
        reject(
          fbError('FB_ERR_CONFIG_INVALID', `${what} port ${port} on ${host} is not permitted`),
        );
      } else {
        reject(err);
      }
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    (server as Partial<HttpServer>).closeAllConnections?.();
  });
}
