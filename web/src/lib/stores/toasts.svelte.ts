export interface Toast {
  id: number;
  text: string;
  kind: 'info' | 'error' | 'success';
  action?: { label: string; run: () => void };
}

class Toasts {
  items = $state<Toast[]>([]);
  private next = 1;

  show(text: string, kind: Toast['kind'] = 'info', action?: Toast['action'], ms = 5000): number {
    const id = this.next++;
    this.items = [...this.items, { id, text, kind, action }];
    setTimeout(() => this.dismiss(id), ms);
    return id;
  }
  error(text: string): number {
    return this.show(text, 'error', undefined, 7000);
  }
  dismiss(id: number): void {
    this.items = this.items.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();
