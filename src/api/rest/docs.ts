/**
 * The pages a person opens in a browser: `/` (where to go), `/docs` (Swagger UI on openapi.yaml)
 * and `/docs/errors` (docs/errors.md as HTML, so the `#CODE` anchors of problem `type` links work).
 */
import express, { type Router } from 'express';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Marked, type Tokens } from 'marked';
import { projectFile } from '../../project-files.js';
import { methodNotAllowed } from './path-router.js';

const require = createRequire(import.meta.url);

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:14px ui-monospace,monospace;background:#f4f4f4}pre{padding:.75rem;overflow:auto}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}:target{background:#fff3b0}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title><style>${STYLE}</style></head>
<body>
${body}
</body></html>`;
}

/**
 * docs/errors.md rendered once. A code's heading gets the code itself as id (problem `type` is
 * `/docs/errors#NO_NODE`) plus the lowercase id the page's own table and GitHub use (`#no_node`).
 */
export function errorsPage(markdown: string): string {
  const marked = new Marked({
    renderer: {
      heading(this: { parser: { parseInline(t: Tokens.Generic[]): string } }, { tokens, depth, text }: Tokens.Heading): string {
        const slug = text.toLowerCase().replace(/[^\w]+/g, '-').replace(/^-|-$/g, '');
        const inner = this.parser.parseInline(tokens);
        const alias = /^[A-Z_]+$/.test(text) ? `<a id="${slug}"></a>` : '';
        const id = /^[A-Z_]+$/.test(text) ? text : slug;
        return `<h${depth} id="${id}">${alias}<a href="#${id}">${inner}</a></h${depth}>\n`;
      },
    },
  });
  return page('zkgate error codes', marked.parse(markdown, { async: false }));
}

function rootPage(version: string): string {
  return page(
    'zkgate',
    `<h1>zkgate ${version}</h1>
<p>A coordination gateway in front of Apache ZooKeeper: znodes, leases, locks, elections and watch streams over REST, gRPC and WebSocket.</p>
<ul>
<li><a href="/docs">/docs</a>: the REST API, browsable and callable (<a href="/openapi.yaml">/openapi.yaml</a>)</li>
<li><a href="/docs/errors">/docs/errors</a>: every error code and what to do about it</li>
<li><a href="/ui">/ui</a>: the console</li>
<li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a></li>
</ul>`,
  );
}

function swaggerPage(): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>zkgate API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>`;
}

/** `/`, `/openapi.yaml` and `/docs…`; each answers 405 with `Allow` to other methods. */
export function docsRouter(): Router {
  const r = express.Router();
  const readOnly = methodNotAllowed(['GET', 'HEAD']);
  const { version } = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string };
  const links = { name: 'zkgate', version, docs: '/docs', openapi: '/openapi.yaml', errors: '/docs/errors', console: '/ui', health: '/healthz', ready: '/readyz', metrics: '/metrics' };
  const root = rootPage(version);
  r.get('/', (req, res) => {
    if (req.accepts(['application/json', 'text/html']) === 'text/html') res.type('html').send(root);
    else res.json(links);
  });
  r.all('/', readOnly);

  const openapi = readFileSync(projectFile('openapi.yaml'), 'utf8');
  r.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(openapi);
  });
  r.all('/openapi.yaml', readOnly);

  const swaggerDir = dirname(require.resolve('swagger-ui-dist/package.json'));
  r.use('/docs/assets', express.static(swaggerDir, { index: false }));
  r.get('/docs', (_req, res) => {
    res.type('html').send(swaggerPage());
  });
  r.all('/docs', readOnly);
  r.get('/docs/init.js', (_req, res) => {
    res.type('application/javascript').send("window.ui = SwaggerUIBundle({ url: '/openapi.yaml', dom_id: '#ui' });");
  });
  r.all('/docs/init.js', readOnly);

  const markdown = readFileSync(projectFile(join('docs', 'errors.md')), 'utf8');
  const html = errorsPage(markdown);
  r.get('/docs/errors', (req, res) => {
    if (req.accepts(['text/html', 'text/markdown']) === 'text/markdown') res.type('text/markdown').send(markdown);
    else res.type('html').send(html);
  });
  r.all('/docs/errors', readOnly);
  return r;
}
