// Tools: the catalogue, per-conversation choice, confirmations of side-effecting
// calls, cited web sources, and the admin's MCP servers (see docs/ARCHITECTURE.md).
import { request } from './api/client';
import type {
  Conversation,
  McpServer,
  McpServerIn,
  McpServerList,
  MessageSource,
  PendingCall,
  ToolCallList,
  ToolInfo,
  ToolList,
  WebSearchConfig,
  WebSearchIn,
  WebSearchTestResult,
} from './api/types';

const enc = encodeURIComponent;

export const toolsApi = {
  list: () => request<ToolList>('/api/tools'),
  setConversationTools: (conversationId: string, tools: string[] | null) =>
    request<Conversation>(`/api/conversations/${enc(conversationId)}`, { method: 'PATCH', body: { tools } }),
  pending: (conversationId: string) =>
    request<ToolCallList>(`/api/conversations/${enc(conversationId)}/tool-calls`),
  decide: (conversationId: string, callId: string, approve: boolean) =>
    request<PendingCall>(`/api/conversations/${enc(conversationId)}/tool-calls/${enc(callId)}`, {
      method: 'POST',
      body: { approve },
    }),
  mcpList: () => request<McpServerList>('/api/admin/mcp'),
  mcpAdd: (body: McpServerIn) => request<McpServer>('/api/admin/mcp', { method: 'POST', body }),
  mcpSetEnabled: (id: string, enabled: boolean) =>
    request<McpServer>(`/api/admin/mcp/${enc(id)}`, { method: 'PATCH', body: { enabled } }),
  mcpRemove: (id: string) => request<void>(`/api/admin/mcp/${enc(id)}`, { method: 'DELETE' }),
  webSearch: () => request<WebSearchConfig>('/api/admin/web-search'),
  webSearchSave: (body: WebSearchIn) => request<WebSearchConfig>('/api/admin/web-search', { method: 'PUT', body }),
  webSearchTest: (body: WebSearchIn) =>
    request<WebSearchTestResult>('/api/admin/web-search/test', { method: 'POST', body }),
  webSearchReset: () => request<WebSearchConfig>('/api/admin/web-search', { method: 'DELETE' }),
};

/** The tools a conversation uses: its own choice, or every tool (the server's default). */
export function effectiveTools(choice: string[] | null | undefined, all: ToolInfo[]): string[] {
  const names = all.map((t) => t.name);
  return choice == null ? names : choice.filter((n) => names.includes(n));
}

/** The choice after switching ``name`` on or off (starting from the effective set). */
export function toggleTool(choice: string[] | null | undefined, all: ToolInfo[], name: string): string[] {
  const current = effectiveTools(choice, all);
  return current.includes(name) ? current.filter((n) => n !== name) : [...current, name];
}

/** An absolute http(s) URL safe to show as a link, or null. */
export function safeHttpUrl(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

/** Web sources worth listing under an answer (with a usable link), de-duplicated; those
 * the model cites by number (`ref`) first, in number order. */
export function webLinks(
  sources: readonly MessageSource[] | null | undefined,
): { title: string; url: string; host: string; snippet: string; ref: number | null }[] {
  const out: { title: string; url: string; host: string; snippet: string; ref: number | null }[] = [];
  for (const s of sources ?? []) {
    if (s.kind !== 'web') continue;
    const url = safeHttpUrl(s.url);
    if (!url || out.some((o) => o.url === url)) continue;
    const ref = typeof s.ref === 'number' ? s.ref : null;
    out.push({ title: s.title || url, url, host: new URL(url).host, snippet: s.snippet || '', ref });
  }
  return out.sort((a, b) => (a.ref ?? Infinity) - (b.ref ?? Infinity));
}

/** Arguments pretty-printed for the confirmation prompt (as text, never HTML). */
export function prettyArguments(args: string): string {
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}

/** "a, b" lines into an array; "K=V" lines into an object (for the MCP form). */
export function parseLines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter(Boolean);
}

export function parsePairs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of parseLines(text)) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}
