// Groups (admin), assistant sharing and the gallery, and projects: the clients of
// /api/admin/groups, /api/assistants/{id}/shares, /api/assistant-gallery and
// /api/projects. Mirrors docs/design/projects.md.
import { request } from './api/client';
import type {
  AdminAssistantList,
  AssistantDocument,
  AssistantImported,
  AssistantPolicy,
  GalleryList,
  Group,
  GroupList,
  GroupMemberList,
  GroupNames,
  Project,
  ProjectChatList,
  ProjectChatStarted,
  ProjectDocument,
  ProjectFields,
  ProjectFileList,
  ProjectImported,
  ProjectList,
  ProjectMember,
  ProjectMemberList,
  ProjectTranscript,
  Share,
  ShareIn,
  ShareList,
} from './api/types';

const enc = encodeURIComponent;

export const groupsApi = {
  list: () => request<GroupList>('/api/admin/groups'),
  names: () => request<GroupNames>('/api/groups'),
  create: (name: string, description = '') => request<Group>('/api/admin/groups', { method: 'POST', body: { name, description } }),
  remove: (id: string) => request<void>(`/api/admin/groups/${enc(id)}`, { method: 'DELETE' }),
  members: (id: string) => request<GroupMemberList>(`/api/admin/groups/${enc(id)}/members`),
  addMember: (id: string, userId: string) => request<void>(`/api/admin/groups/${enc(id)}/members/${enc(userId)}`, { method: 'PUT' }),
  removeMember: (id: string, userId: string) =>
    request<void>(`/api/admin/groups/${enc(id)}/members/${enc(userId)}`, { method: 'DELETE' }),
  /** The models the group's members may pick directly; empty: all. */
  setModels: (id: string, models: string[]) =>
    request<{ models: string[] }>(`/api/admin/groups/${enc(id)}/models`, { method: 'PUT', body: { models } }),
  policy: () => request<AssistantPolicy>('/api/admin/assistant-policy'),
  setPolicy: (p: AssistantPolicy) => request<AssistantPolicy>('/api/admin/assistant-policy', { method: 'PUT', body: p }),
  assistants: (q = '') => request<AdminAssistantList>(`/api/admin/assistants?q=${enc(q)}`),
  feature: (id: string, featured: boolean) =>
    request<unknown>(`/api/admin/assistants/${enc(id)}/featured`, { method: 'PUT', body: { featured } }),
};

export const sharesApi = {
  list: (assistantId: string) => request<ShareList>(`/api/assistants/${enc(assistantId)}/shares`),
  add: (assistantId: string, body: ShareIn) => request<Share>(`/api/assistants/${enc(assistantId)}/shares`, { method: 'POST', body }),
  setRole: (assistantId: string, shareId: string, role: 'chat' | 'view' | 'edit') =>
    request<void>(`/api/assistants/${enc(assistantId)}/shares/${enc(shareId)}`, { method: 'PATCH', body: { role } }),
  revoke: (assistantId: string, shareId: string) =>
    request<void>(`/api/assistants/${enc(assistantId)}/shares/${enc(shareId)}`, { method: 'DELETE' }),
  transfer: (assistantId: string, email: string) =>
    request<void>(`/api/assistants/${enc(assistantId)}/owner`, { method: 'POST', body: { email } }),
  openLink: (token: string) => request<{ assistant_id: string }>('/api/assistant-links', { method: 'POST', body: { token } }),
  gallery: (q = '') => request<GalleryList>(`/api/assistant-gallery${q ? `?q=${enc(q)}` : ''}`),
  exportDoc: (assistantId: string) => request<AssistantDocument>(`/api/assistants/${enc(assistantId)}/export`),
  importDoc: (document: AssistantDocument) => request<AssistantImported>('/api/assistants/import', { method: 'POST', body: { document } }),
};

export const projectsApi = {
  list: () => request<ProjectList>('/api/projects'),
  get: (id: string) => request<Project>(`/api/projects/${enc(id)}`),
  create: (fields: ProjectFields) => request<Project>('/api/projects', { method: 'POST', body: fields }),
  update: (id: string, fields: ProjectFields) => request<Project>(`/api/projects/${enc(id)}`, { method: 'PATCH', body: fields }),
  remove: (id: string) => request<void>(`/api/projects/${enc(id)}`, { method: 'DELETE' }),
  chats: (id: string) => request<ProjectChatList>(`/api/projects/${enc(id)}/chats`),
  startChat: (id: string) => request<ProjectChatStarted>(`/api/projects/${enc(id)}/chats`, { method: 'POST', body: {} }),
  readChat: (id: string, conv: string) => request<ProjectTranscript>(`/api/projects/${enc(id)}/chats/${enc(conv)}`),
  moveIn: (id: string, conv: string) => request<void>(`/api/projects/${enc(id)}/chats/${enc(conv)}`, { method: 'PUT' }),
  moveOut: (id: string, conv: string) => request<void>(`/api/projects/${enc(id)}/chats/${enc(conv)}`, { method: 'DELETE' }),
  files: (id: string) => request<ProjectFileList>(`/api/projects/${enc(id)}/files`),
  addFile: (id: string, fileId: string) => request<void>(`/api/projects/${enc(id)}/files/${enc(fileId)}`, { method: 'PUT' }),
  removeFile: (id: string, fileId: string) => request<void>(`/api/projects/${enc(id)}/files/${enc(fileId)}`, { method: 'DELETE' }),
  members: (id: string) => request<ProjectMemberList>(`/api/projects/${enc(id)}/members`),
  addMember: (id: string, body: { email?: string; group_id?: string; role: 'viewer' | 'editor' }) =>
    request<ProjectMember>(`/api/projects/${enc(id)}/members`, { method: 'POST', body }),
  removeMember: (id: string, memberId: string) =>
    request<void>(`/api/projects/${enc(id)}/members/${enc(memberId)}`, { method: 'DELETE' }),
  exportDoc: (id: string) => request<ProjectDocument>(`/api/projects/${enc(id)}/export`),
  importDoc: (document: ProjectDocument) => request<ProjectImported>('/api/projects/import', { method: 'POST', body: { document } }),
};

/** What a share's role lets its people do, in words. */
export function roleWords(role: string): string {
  return role === 'edit' ? 'Can edit' : role === 'view' ? 'Can view settings' : 'Can chat';
}

/** Save a JSON document as a file in the browser. */
export function download(name: string, doc: unknown): void {
  const blob = new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
