// The baseline: a bare http-proxy-3 pass-through with the same keep-alive agent settings as the
// sidecar, and no policy at all.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createProxyServer } from 'http-proxy-3';

const { values } = parseArgs({ options: { target: { type: 'string' }, port: { type: 'string' } } });
const agent = new http.Agent({
  keepAlive: true,
  maxSockets: 256,
  maxFreeSockets: 64,
  scheduling: 'lifo',
});
const proxy = createProxyServer({ target: values.target, agent });
proxy.on('error', (_error, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
http
  .createServer((req, res) => proxy.web(req, res))
  .listen(Number(values.port), '127.0.0.1', () => {
    process.stdout.write('ready\n');
  });
