// Images: the composer's image mode, an image's lineage, and Admin → Images.
// Every URL here is Parley's own (/api/images/{id}/content): the browser never loads a
// provider's URL.
import { request } from './api/client';
import type {
  ChatImages,
  ImageList,
  ImageProvider,
  ImageProviderIn,
  ImageProviderList,
  ImageProviderPatch,
  ImageSettings,
} from './api/types';

const enc = encodeURIComponent;

export type ImageOperation = 'generate' | 'edit' | 'variation';

export const imagesApi = {
  settings: () => request<ImageSettings>('/api/images/settings'),
  inChat: (conversationId: string, body: { prompt: string; operation: ImageOperation; parent_id?: string | null }) =>
    request<ChatImages>(`/api/conversations/${enc(conversationId)}/images`, { method: 'POST', body }),
  remove: (imageId: string) => request<void>(`/api/images/${enc(imageId)}`, { method: 'DELETE' }),
  lineage: (imageId: string) => request<ImageList>(`/api/images/${enc(imageId)}/lineage`),
  providers: () => request<ImageProviderList>('/api/admin/images/providers'),
  addProvider: (body: ImageProviderIn) => request<ImageProvider>('/api/admin/images/providers', { method: 'POST', body }),
  changeProvider: (id: string, body: ImageProviderPatch) =>
    request<ImageProvider>(`/api/admin/images/providers/${enc(id)}`, { method: 'PATCH', body }),
  removeProvider: (id: string) => request<void>(`/api/admin/images/providers/${enc(id)}`, { method: 'DELETE' }),
};

/** The download link of an image Parley serves (an attachment, named by the server). */
export function downloadUrl(url: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}download=true`;
}

/** The id an image URL of Parley's names (/api/images/{id}/content), or null. */
export function imageIdOf(url: string): string | null {
  const m = /^\/api\/images\/([A-Za-z0-9]+)\/content/.exec(url);
  return m ? m[1] : null;
}

/** The words under an image of a lineage: what was done to make it. */
export function operationLabel(op: string): string {
  return op === 'edit' ? 'Edit' : op === 'variation' ? 'Variation' : 'Original';
}

/** A ComfyUI mapping as the admin form edits it: one `field = node.inputs.name` a line. */
export function parseMapping(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const [k, ...rest] = line.split('=');
    const key = k.trim();
    const value = rest.join('=').trim();
    if (key && value) out[key] = value;
  }
  return out;
}
