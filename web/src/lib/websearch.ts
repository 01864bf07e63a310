// What the composer's globe shows, decided in one place so every reason is said the same
// way: the chat's model cannot call tools (the user can pick another model), search not
// set up on the server (an admin can fix it), or the toggle's own on/off. A model without
// tool use is never sent `web_search: true`: the server would answer without searching,
// so a lit globe would be a promise nothing keeps.
import type { ModelInfo } from './api/types';

export type GlobeState = 'unknown' | 'unavailable' | 'no-tools' | 'on' | 'off';

/** `available`: the server offers web search (null: not known yet); `on`: the user's
 * toggle for this chat; `model`: the model the chat will use (undefined: not known). */
export function globeState(
  available: boolean | null,
  on: boolean,
  model: Pick<ModelInfo, 'tool_use'> | undefined,
): GlobeState {
  // The model first: setting search up would not help it, and choosing another model
  // is what this user can do now (the next model then says whether search is set up).
  if (model?.tool_use === false) return 'no-tools';
  if (available === false) return 'unavailable';
  if (available === null) return 'unknown';
  return on ? 'on' : 'off';
}

/** Why the globe cannot be used with this model, as the user reads it. */
export function noToolsReason(model: Pick<ModelInfo, 'display_name' | 'ref'> | undefined): string {
  const name = model?.display_name || model?.ref || 'This model';
  return `${name} cannot search the web: choose another model.`;
}
