// A dependency-free mock of Parley's native API (docs/ARCHITECTURE.md) for UI
// development and browser smoke tests. Serves the built app with the strict CSP.
// Usage: node scripts/mock-server.mjs [port]   (after `npm run build`)
import { createServer } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const PORT = Number(process.argv[2] || process.env.PORT || 8090);
const STATIC = fileURLToPath(new URL('../../src/parley/static/', import.meta.url));
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
const DELAY = Number(process.env.MOCK_DELAY ?? 15);
const NO_MODELS = !!process.env.MOCK_NO_MODELS;

const db = { users: [], sessions: new Map(), convs: new Map(), msgs: new Map(), keys: [], settings: { signup: 'open', default_model: 'mock/echo' }, providers: [], stops: new Set() };
let seq = 0;
const now = () => new Date(Date.now() + seq++).toISOString();

function problem(res, status, detail, code = 'error') {
  res.writeHead(status, { 'Content-Type': 'application/problem+json' });
  res.end(JSON.stringify({ type: 'about:blank', title: detail, status, detail, code }));
}
function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}
async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const s = Buffer.concat(chunks).toString();
  return s ? JSON.parse(s) : {};
}
function cookies(req) {
  const out = {};
  for (const p of (req.headers.cookie || '').split(';')) {
    const i = p.indexOf('=');
    if (i > 0) out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}
function publicUser(u) {
  const { password, ...rest } = u;
  return rest;
}
function startSession(res, user) {
  const token = randomBytes(16).toString('hex');
  const csrf = randomBytes(16).toString('hex');
  db.sessions.set(token, { userId: user.id, csrf });
  res.setHeader('Set-Cookie', [`parley_session=${token}; Path=/; HttpOnly; SameSite=Lax`, `parley_csrf=${csrf}; Path=/; SameSite=Lax`]);
}
function authUser(req) {
  const c = cookies(req);
  const s = db.sessions.get(c.parley_session);
  if (!s) return null;
  const u = db.users.find((x) => x.id === s.userId);
  if (!u || u.status !== 'active') return null;
  if (['POST', 'PATCH', 'PUT', 'DELETE'].includes(req.method) && req.headers['x-csrf-token'] !== s.csrf) return 'csrf';
  return u;
}
const MODELS = NO_MODELS ? [] : [
  { ref: 'mock/echo', provider: 'mock', name: 'echo', display_name: 'Mock Echo', context_window: 8192, supports_tools: true, supports_vision: false, input_price: 0.5, output_price: 1.5 },
  { ref: 'mock/smart', provider: 'mock', name: 'smart', display_name: 'Mock Smart', context_window: 128000, supports_tools: true, supports_vision: true, input_price: 3, output_price: 15 },
];

function conv(userId, body) {
  const c = { id: randomUUID(), title: body.title ?? null, model: body.model ?? null, pinned: false, archived: false, temporary: !!body.temporary, created_at: now(), updated_at: now(), user_id: userId, leaf: null };
  db.convs.set(c.id, c);
  return c;
}
const pubConv = ({ user_id, leaf, ...c }) => c;
function msg(c, role, parent_id, content) {
  const m = { id: randomUUID(), parent_id, role, content, reasoning: null, steps: [], status: 'complete', provider: null, model: null, input_tokens: null, output_tokens: null, latency_ms: null, ttft_ms: null, finish_reason: null, cost: null, error_code: null, error_message: null, feedback: null, pinned: false, created_at: now(), conversation_id: c.id };
  db.msgs.set(m.id, m);
  return m;
}
function siblings(m) {
  return [...db.msgs.values()].filter((x) => x.conversation_id === m.conversation_id && x.parent_id === m.parent_id).map((x) => x.id);
}
const pubMsg = (m) => { const { conversation_id, ...r } = m; return { ...r, siblings: siblings(m) }; };
function branch(c) {
  const out = [];
  let id = c.leaf;
  while (id) { const m = db.msgs.get(id); out.unshift(pubMsg(m)); id = m.parent_id; }
  return out;
}
function newestLeafUnder(id) {
  let cur = db.msgs.get(id);
  for (;;) {
    const kids = [...db.msgs.values()].filter((x) => x.parent_id === cur.id);
    if (!kids.length) return cur.id;
    cur = kids[kids.length - 1];
  }
}

const SAMPLE = `Here is a **rich** answer with a list, code, a table and math.

1. First point
2. Second point with \`inline code\`

\`\`\`python
def greet(name: str) -> str:
    return f"Hello, {name}!"
\`\`\`

| Language | Typing |
|---|---|
| Python | dynamic |
| Rust | static |

Euler: $e^{i\\pi} + 1 = 0$ and a display formula:

$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$

A link: [example](https://example.com) and an image: ![chart](https://images.example.com/chart.png?secret=abc)
`;
const XSS = `<img src=x onerror=alert(1)> <script>alert(2)</script> [click](javascript:alert(3)) ![x" onerror=alert(4)](y) <svg onload=alert(5)>`;

function replyFor(text) {
  if (/xss/i.test(text)) return XSS;
  if (/huge/i.test(text)) return Array.from({ length: 400 }, (_, i) => i % 10 === 5 ? '```python\n' + 'print("line")\n'.repeat(20) + '```' : `Paragraph ${i + 1}: ` + 'lorem ipsum dolor sit amet '.repeat(8)).join('\n\n');
  if (/long/i.test(text)) return Array.from({ length: 60 }, (_, i) => `Paragraph ${i + 1}: ` + 'lorem ipsum dolor sit amet '.repeat(8)).join('\n\n');
  if (/short/i.test(text)) return `You said: ${text}`;
  return SAMPLE;
}

async function turn(req, res, user, c, kind, target, content, model) {
  let userMsg;
  if (kind === 'send') {
    const parent = target ?? c.leaf;
    userMsg = msg(c, 'user', parent, content);
  } else if (kind === 'edit') {
    const old = db.msgs.get(target);
    userMsg = msg(c, 'user', old.parent_id, content);
  } else {
    const t = db.msgs.get(target);
    userMsg = t.role === 'assistant' ? db.msgs.get(t.parent_id) : t;
  }
  const a = msg(c, 'assistant', userMsg.id, '');
  a.status = 'streaming';
  a.model = model || c.model || 'mock/echo';
  a.provider = 'mock';
  c.leaf = a.id;
  c.updated_at = now();
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  send('start', { user_message: pubMsg(userMsg), assistant_message: pubMsg(a) });
  const t0 = Date.now();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const text = userMsg.content;
  if (/think/i.test(text)) {
    a.reasoning = '';
    for (const w of 'Let me think about this step by step. The user wants an answer.'.split(/(?= )/)) { a.reasoning += w; send('reasoning', { text: w }); await sleep(DELAY); }
  }
  if (/tool/i.test(text)) {
    send('tool_start', { id: 'call_1', name: 'calculator', arguments: { expression: '6*7' } });
    await sleep(100);
    a.steps = [{ id: 'call_1', name: 'calculator', arguments: { expression: '6*7' }, output: '42', is_error: false, duration_ms: 3 }];
    send('tool_result', { id: 'call_1', name: 'calculator', output: '42', is_error: false, duration_ms: 3 });
  }
  if (/context/i.test(text)) send('context', { dropped_messages: 4, summarized: false, message: '' });
  if (/fail/i.test(text)) {
    a.status = 'failed'; a.error_code = 'upstream_error'; a.error_message = 'The model provider returned an error (HTTP 502).';
    send('error', { code: a.error_code, message: a.error_message, retryable: true });
    send('done', { finish_reason: 'error', usage: null, message: pubMsg(a) });
    return res.end();
  }
  const reply = replyFor(text);
  const parts = reply.match(/[\s\S]{1,4}/g) || [];
  for (const p of parts) {
    if (db.stops.has(c.id)) break;
    a.content += p;
    send('text', { text: p });
    if (/huge/i.test(text)) { if (Math.random() < 0.05) await sleep(1); } else await sleep(DELAY);
  }
  const stopped = db.stops.delete(c.id);
  a.status = stopped ? 'cancelled' : 'complete';
  a.finish_reason = stopped ? 'cancelled' : 'stop';
  a.input_tokens = 120; a.output_tokens = Math.ceil(a.content.length / 4); a.latency_ms = Date.now() - t0; a.ttft_ms = 42; a.cost = 0.00042;
  send('usage', { usage: { input_tokens: a.input_tokens, output_tokens: a.output_tokens } });
  send('done', { finish_reason: a.finish_reason, usage: { input_tokens: a.input_tokens, output_tokens: a.output_tokens }, message: pubMsg(a) });
  if (!c.title) {
    c.title = text.slice(0, 40) + ' <b>title</b>';
    send('title', { conversation_id: c.id, title: c.title });
  }
  res.end();
}

async function api(req, res, url) {
  const p = url.pathname;
  const m = req.method;
  if (p === '/api/health') return json(res, 200, { status: 'ok' });
  if (p === '/api/auth/config') return json(res, 200, { signup: db.settings.signup, has_users: db.users.length > 0 });
  if (p === '/api/auth/signup' && m === 'POST') {
    const b = await body(req);
    if (db.users.some((u) => u.email === b.email)) return problem(res, 409, 'That email is already registered.', 'conflict');
    if (!b.password || b.password.length < 8) return problem(res, 422, 'Password too short.', 'validation');
    const first = db.users.length === 0;
    if (!first && db.settings.signup === 'closed') return problem(res, 403, 'Sign-up is closed.', 'signup_closed');
    const u = { id: randomUUID(), email: b.email, name: b.name, role: first ? 'admin' : 'user', status: !first && db.settings.signup === 'approval' ? 'pending' : 'active', timezone: null, about_me: '', response_style: '', preferences: {}, created_at: now(), password: b.password };
    db.users.push(u);
    if (u.status === 'pending') return json(res, 202, { user: publicUser(u) });
    startSession(res, u);
    return json(res, 201, { user: publicUser(u) });
  }
  if (p === '/api/auth/login' && m === 'POST') {
    const b = await body(req);
    const u = db.users.find((x) => x.email === b.email && x.password === b.password);
    if (!u) return problem(res, 401, 'Invalid email or password.', 'invalid_credentials');
    if (u.status !== 'active') return problem(res, 403, 'Your account is not active yet.', 'inactive');
    startSession(res, u);
    return json(res, 200, { user: publicUser(u) });
  }
  const user = authUser(req);
  if (user === 'csrf') return problem(res, 403, 'CSRF token missing or invalid.', 'csrf');
  if (p === '/api/auth/logout' && m === 'POST') {
    db.sessions.delete(cookies(req).parley_session);
    res.setHeader('Set-Cookie', ['parley_session=; Path=/; Max-Age=0', 'parley_csrf=; Path=/; Max-Age=0']);
    return json(res, 204);
  }
  if (!user) return problem(res, 401, 'Not signed in.', 'unauthorized');
  if (p === '/api/test/expire' && m === 'POST') { db.sessions.clear(); return json(res, 204); }
  if (p === '/api/test/seed' && m === 'POST') {
    // A long conversation (default 1,000 messages) with varied markdown.
    const n = Number(url.searchParams.get('n') || 1000);
    const c = conv(user.id, { title: `Long conversation (${n})` });
    let parent = null;
    for (let i = 0; i < n; i++) {
      const role = i % 2 ? 'assistant' : 'user';
      const content = role === 'user' ? `Question ${i}: how does item ${i} work?` : `Answer ${i}.\n\n\`\`\`js\nconst x${i} = ${i} * 2;\n\`\`\`\n\n| k | v |\n|---|---|\n| ${i} | $x^${i % 9}$ |\n\n- one\n- two **${i}**`;
      const mg = msg(c, role, parent, content);
      parent = mg.id;
    }
    c.leaf = parent;
    return json(res, 201, pubConv(c));
  }
  if (p === '/api/auth/me') return json(res, 200, { user: publicUser(user) });
  if (p === '/api/me' && m === 'PATCH') { Object.assign(user, await body(req)); return json(res, 200, { user: publicUser(user) }); }
  if (p === '/api/me/password' && m === 'POST') { const b = await body(req); if (b.current_password !== user.password) return problem(res, 400, 'Current password is wrong.', 'bad_password'); user.password = b.new_password; return json(res, 204); }
  if (p === '/api/me/export') return json(res, 200, { user: publicUser(user) }, { 'Content-Disposition': 'attachment; filename="export.json"' });
  if (p === '/api/me' && m === 'DELETE') { const b = await body(req); if (b.password !== user.password) return problem(res, 400, 'Wrong password.', 'bad_password'); db.users = db.users.filter((u) => u !== user); return json(res, 204); }
  if (p === '/api/keys' && m === 'GET') return json(res, 200, { items: db.keys.filter((k) => k.user_id === user.id).map(({ user_id, ...k }) => k) });
  if (p === '/api/keys' && m === 'POST') { const b = await body(req); const key = 'pk-' + randomBytes(20).toString('hex'); const k = { id: randomUUID(), name: b.name, prefix: key.slice(0, 10), created_at: now(), last_used_at: null, revoked_at: null, user_id: user.id }; db.keys.push(k); return json(res, 201, { id: k.id, name: k.name, prefix: k.prefix, created_at: k.created_at, key }); }
  let mm = p.match(/^\/api\/keys\/([^/]+)$/);
  if (mm && m === 'DELETE') { const k = db.keys.find((x) => x.id === mm[1]); if (k) k.revoked_at = now(); return json(res, 204); }
  if (p === '/api/models') return json(res, 200, { items: MODELS, default: MODELS.length ? db.settings.default_model : null, local: { status: 'not_loaded', detail: 'SmolLM2 loads on first use' } });
  if (p === '/api/conversations' && m === 'GET') {
    const archived = url.searchParams.get('archived') === 'true';
    const limit = Number(url.searchParams.get('limit') || 50);
    const all = [...db.convs.values()].filter((c) => c.user_id === user.id && c.archived === archived).sort((a, b) => b.updated_at.localeCompare(a.updated_at));
    const start = Number(url.searchParams.get('cursor') || 0);
    const items = all.slice(start, start + limit).map(pubConv);
    return json(res, 200, { items, next_cursor: start + limit < all.length ? String(start + limit) : null });
  }
  if (p === '/api/conversations' && m === 'POST') return json(res, 201, pubConv(conv(user.id, await body(req))));
  if (p === '/api/search') {
    const q = (url.searchParams.get('q') || '').toLowerCase();
    const items = [];
    for (const mg of db.msgs.values()) {
      const c = db.convs.get(mg.conversation_id);
      if (c.user_id !== user.id) continue;
      const i = mg.content.toLowerCase().indexOf(q);
      if (q && i !== -1) {
        const s = Math.max(0, i - 20);
        const snippet = mg.content.slice(s, i + q.length + 40);
        items.push({ conversation_id: c.id, title: c.title, message_id: mg.id, snippet, highlights: [[i - s, i - s + q.length]] });
      }
    }
    return json(res, 200, { items: items.slice(0, 20) });
  }
  mm = p.match(/^\/api\/messages\/([^/]+)$/);
  if (mm && m === 'PATCH') { const g = db.msgs.get(mm[1]); Object.assign(g, await body(req)); return json(res, 200, pubMsg(g)); }
  mm = p.match(/^\/api\/conversations\/([^/]+)(\/.*)?$/);
  if (mm) {
    const c = db.convs.get(mm[1]);
    if (!c || c.user_id !== user.id) return problem(res, 404, 'Conversation not found.', 'not_found');
    const rest = mm[2] || '';
    if (!rest && m === 'GET') return json(res, 200, { conversation: pubConv(c), messages: branch(c) });
    if (!rest && m === 'PATCH') { const b = await body(req); for (const k of ['title', 'pinned', 'archived', 'model']) if (k in b) c[k] = b[k]; return json(res, 200, pubConv(c)); }
    if (!rest && m === 'DELETE') { db.convs.delete(c.id); return json(res, 204); }
    if (rest === '/branch' && m === 'POST') { const b = await body(req); c.leaf = newestLeafUnder(b.message_id); return json(res, 200, { conversation: pubConv(c), messages: branch(c) }); }
    if (rest === '/stop' && m === 'POST') { db.stops.add(c.id); return json(res, 204); }
    if (rest === '/messages' && m === 'POST') { const b = await body(req); return turn(req, res, user, c, 'send', b.parent_id, b.content, b.model); }
    const t = rest.match(/^\/messages\/([^/]+)\/(regenerate|edit)$/);
    if (t && m === 'POST') { const b = await body(req); return turn(req, res, user, c, t[2], t[1], b.content, b.model); }
  }
  if (p.startsWith('/api/admin')) {
    if (user.role !== 'admin') return problem(res, 403, 'Admins only.', 'forbidden');
    if (p === '/api/admin/users' && m === 'GET') return json(res, 200, { items: db.users.map(publicUser) });
    if (p === '/api/admin/users' && m === 'POST') { const b = await body(req); const u = { id: randomUUID(), ...b, status: 'active', timezone: null, about_me: '', response_style: '', preferences: {}, created_at: now() }; db.users.push(u); return json(res, 201, { user: publicUser(u) }); }
    mm = p.match(/^\/api\/admin\/users\/([^/]+)$/);
    if (mm && m === 'PATCH') { const u = db.users.find((x) => x.id === mm[1]); Object.assign(u, await body(req)); return json(res, 200, { user: publicUser(u) }); }
    if (p === '/api/admin/settings' && m === 'GET') return json(res, 200, db.settings);
    if (p === '/api/admin/settings' && m === 'PATCH') { Object.assign(db.settings, await body(req)); return json(res, 200, db.settings); }
    if (p === '/api/admin/providers' && m === 'GET') return json(res, 200, { items: [
      { name: 'mock', kind: 'openai', base_url: 'http://127.0.0.1:9999/v1', source: 'config', has_key: true, editable: false, models: ['echo', 'smart'] },
      { name: 'local', kind: 'local', base_url: null, source: 'builtin', has_key: false, editable: false, models: ['smollm2-135m'] },
      ...db.providers] });
    if (p === '/api/admin/providers' && m === 'POST') { const b = await body(req); db.providers.push({ name: b.name, kind: b.kind, base_url: b.base_url, source: 'database', has_key: !!b.api_key, editable: true, models: [] }); return json(res, 201, {}); }
    if (p === '/api/admin/providers/test' && m === 'POST') { const b = await body(req); return json(res, 200, b.base_url.includes('bad') ? { ok: false, models: [], error: 'Connection refused' } : { ok: true, models: ['gpt-x', 'gpt-y'], error: null }); }
    mm = p.match(/^\/api\/admin\/providers\/([^/]+)(\/test)?$/);
    if (mm && m === 'DELETE') { db.providers = db.providers.filter((x) => x.name !== mm[1]); return json(res, 204); }
    if (mm && mm[2] && m === 'POST') return json(res, 200, { ok: true, models: ['echo'], error: null });
  }
  return problem(res, 404, 'Not found.', 'not_found');
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.woff2': 'font/woff2', '.woff': 'font/woff', '.ttf': 'font/ttf', '.webmanifest': 'application/manifest+json', '.json': 'application/json' };

createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  try {
    if (url.pathname.startsWith('/api/')) return await api(req, res, url);
    res.setHeader('Content-Security-Policy', CSP);
    let file = normalize(join(STATIC, url.pathname));
    if (!file.startsWith(STATIC)) return problem(res, 400, 'bad path');
    let ok = false;
    try { ok = (await stat(file)).isFile(); } catch { ok = false; }
    if (!ok) file = join(STATIC, 'index.html');
    const data = await readFile(file);
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' });
    res.end(data);
  } catch (e) {
    console.error(e);
    if (!res.headersSent) problem(res, 500, String(e));
  }
}).listen(PORT, '127.0.0.1', () => console.log(`mock parley on http://127.0.0.1:${PORT}`));
