import { models as modelsApi } from '../api/client';
import type { ModelInfo, ModelList } from '../api/types';

class Models {
  items = $state<ModelInfo[]>([]);
  defaultRef = $state<string | null>(null);
  local = $state<ModelList['local'] | null>(null);
  loaded = $state(false);
  error = $state<string | null>(null);

  async load(): Promise<void> {
    try {
      const r = await modelsApi.list();
      this.items = r.items ?? [];
      this.defaultRef = r.default ?? null;
      this.local = r.local ?? null;
      this.error = null;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    } finally {
      this.loaded = true;
    }
  }

  label(ref: string | null | undefined): string {
    if (!ref) return 'Default model';
    return this.items.find((m) => m.ref === ref)?.display_name || ref;
  }
}

export const models = new Models();
