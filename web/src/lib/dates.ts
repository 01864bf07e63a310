import type { Conversation } from './api/types';

export type GroupName = 'Pinned' | 'Today' | 'Yesterday' | 'Previous 7 days' | 'Older';
export interface ConversationGroup {
  name: GroupName;
  items: Conversation[];
}

function startOfDay(d: Date): number {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** Which date group a timestamp falls in, relative to `now` (local calendar days). */
export function dateGroup(iso: string, now: Date = new Date()): Exclude<GroupName, 'Pinned'> {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return 'Older';
  const today = startOfDay(now);
  const day = 24 * 60 * 60 * 1000;
  const ts = startOfDay(t);
  if (ts >= today) return 'Today';
  // Use calendar arithmetic so DST changes do not shift the boundary.
  const y = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1).getTime();
  if (ts >= y) return 'Yesterday';
  const w = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 7).getTime();
  if (ts >= w) return 'Previous 7 days';
  void day;
  return 'Older';
}

const ORDER: GroupName[] = ['Pinned', 'Today', 'Yesterday', 'Previous 7 days', 'Older'];

/** Group conversations: pinned first, then by updated_at. Input order is kept inside a group. */
export function groupConversations(items: Conversation[], now: Date = new Date()): ConversationGroup[] {
  const map = new Map<GroupName, Conversation[]>();
  for (const c of items) {
    const g: GroupName = c.pinned ? 'Pinned' : dateGroup(c.updated_at, now);
    let arr = map.get(g);
    if (!arr) map.set(g, (arr = []));
    arr.push(c);
  }
  return ORDER.filter((n) => map.has(n)).map((name) => ({ name, items: map.get(name)! }));
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
