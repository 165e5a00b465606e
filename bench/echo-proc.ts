/**
 * The ceiling of "gRPC ÷ REST" with the benchmark's clients: a minimal grpc-js server answering
 * `zkgate.v1.Znodes/Get` and a minimal `node:http` server answering `GET /v1/nodes/bench`, both
 * with the same constant 1 KiB node and no ZooKeeper, in their own process. Whatever gap the two
 * show is the libraries' (grpc-js client and server vs node:http), not the gateway's.
 *
 * A third server is Node's own ceiling for a unary gRPC answer: a bare `node:http2` handler (no
 * gRPC library) writing the same encoded Get answer with Node's public API — `respond` with
 * `waitForTrailers`, `end`, `sendTrailers` on `wantTrailers`, as grpc-js and the gateway's fast
 * path do. h2load against it and the minimal `node:http` server says what HTTP/2 and its
 * trailers cost in Node before any server code runs.
 */
import { Server, ServerCredentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { createServer } from 'node:http';
import { createServer as createH2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { loadContract } from '../src/api/grpc/server.js';
import { serve } from './ipc.js';

const data = Buffer.alloc(1024, 'x');
const stat = { czxid: '4', mzxid: '5', pzxid: '4', ctimeMs: 1, mtimeMs: 1, version: 1, cversion: 0, aversion: 0, ephemeralOwner: '0', dataLength: 1024, numChildren: 0 };
const restBody = JSON.stringify({ path: '/bench', data: data.toString('utf8'), encoding: 'utf8', stat });

serve({
  start: async () => {
    const v1 = (loadPackageDefinition(loadContract()).zkgate as GrpcObject).v1 as GrpcObject;
    const grpc = new Server({ 'grpc.enable_channelz': 0 });
    grpc.addService((v1.Znodes as ServiceClientConstructor).service, {
      Get: (call: { request: { path: string } }, cb: (err: null, res: unknown) => void) => cb(null, { path: call.request.path, data, stat, source: 'zookeeper' }),
    });
    const grpcPort = await new Promise<number>((resolve, reject) => grpc.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
    const http = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(restBody);
    });
    const httpPort = await new Promise<number>((resolve) => http.listen(0, '127.0.0.1', () => resolve((http.address() as AddressInfo).port)));
    const answer = (loadContract()['zkgate.v1.Znodes'] as unknown as Record<string, { responseSerialize(v: unknown): Buffer }>).Get!.responseSerialize({ path: '/bench', data, stat, source: 'zookeeper' });
    const framed = Buffer.alloc(5 + answer.length);
    framed.writeUInt32BE(answer.length, 1);
    answer.copy(framed, 5);
    const bare = createH2Server();
    bare.on('stream', (stream: ServerHttp2Stream) => {
      stream.resume();
      stream.once('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(framed);
      });
    });
    const bareGrpcPort = await new Promise<number>((resolve) => bare.listen(0, '127.0.0.1', () => resolve((bare.address() as AddressInfo).port)));
    return { httpPort, grpcPort, bareGrpcPort };
  },
});
