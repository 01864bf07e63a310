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

  /** The model a chat with this choice uses (`null`/empty: the default). */
  resolve(ref: string | null | undefined): ModelInfo | undefined {
    const wanted = ref || this.defaultRef;
    return this.items.find((m) => m.ref === wanted);
  }

  /** That model is the demo starter (say so, and what it cannot do). */
  isDemo(ref: string | null | undefined): boolean {
    return Boolean(this.resolve(ref)?.demo);
  }

  /** That model is the embedded one. */
  isLocal(ref: string | null | undefined): boolean {
    const wanted = ref || this.defaultRef;
    return Boolean(wanted && wanted === this.local?.ref);
  }

  label(ref: string | null | undefined): string {
    if (!ref) return 'Default model';
    return this.items.find((m) => m.ref === ref)?.display_name || ref;
  }
}

export const models = new Models();
