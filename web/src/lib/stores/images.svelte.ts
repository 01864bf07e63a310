// The composer's image mode: on/off, the image being edited (when the user clicked Edit
// under a picture), and a request in flight. A request becomes the chat's next exchange on
// the server; the chat is then re-read, so what shows is what a reload shows.
import { errorMessage } from '../api/client';
import { imagesApi, type ImageOperation } from '../images';
import { chat } from './chat.svelte';
import { toasts } from './toasts.svelte';

export interface EditTarget {
  id: string;
  url: string;
}

class ImageMode {
  on = $state(false);
  target = $state<EditTarget | null>(null);
  busy = $state(false);
  available = $state<boolean | null>(null);

  async refresh(): Promise<void> {
    try {
      this.available = (await imagesApi.settings()).available;
    } catch {
      this.available = null;
    }
  }

  toggle(): void {
    this.on = !this.on;
    if (!this.on) this.target = null;
  }

  /** Edit this image next: image mode on, the picture shown above the message box. */
  edit(target: EditTarget): void {
    this.on = true;
    this.target = target;
    chat.focusTick++;
  }

  /** Make a picture (or change the target) from the composer's text. False: nothing made. */
  async make(prompt: string, operation?: ImageOperation, parent?: string | null): Promise<boolean> {
    if (this.busy) return false;
    const id = await chat.ensureConversation();
    if (!id) return false;
    const op = operation ?? (this.target ? 'edit' : 'generate');
    this.busy = true;
    try {
      await imagesApi.inChat(id, { prompt, operation: op, parent_id: parent ?? this.target?.id ?? null });
      this.target = null;
      await chat.resync();
      return true;
    } catch (e) {
      toasts.error(`No image was made: ${errorMessage(e)}`);
      return false;
    } finally {
      this.busy = false;
    }
  }
}

export const imageMode = new ImageMode();
