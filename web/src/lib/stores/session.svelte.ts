import { ApiError, auth, me, setUnauthorizedHandler } from '../api/client';
import type { AuthConfig, Theme, User } from '../api/types';
import { router } from './router.svelte';

const THEME_KEY = 'parley.theme'; // a UI preference only; never tokens

export function applyTheme(theme: Theme): void {
  const dark = theme === 'dark' || (theme === 'system' && window.matchMedia?.('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  document.documentElement.style.colorScheme = dark ? 'dark' : 'light';
}

class Session {
  user = $state<User | null>(null);
  config = $state<AuthConfig | null>(null);
  ready = $state(false);
  /** The server could not be reached at start (the offline shell): not the same as signed out. */
  offline = $state(false);
  /** A message shown on the sign-in page (e.g. "Your session expired"). */
  flash = $state<string | null>(null);
  theme = $state<Theme>('system');

  get isAdmin(): boolean {
    return this.user?.role === 'admin';
  }

  constructor() {
    if (typeof window === 'undefined') return;
    try {
      const t = localStorage.getItem(THEME_KEY);
      if (t === 'light' || t === 'dark' || t === 'system') this.theme = t;
    } catch {
      /* storage disabled */
    }
    window.matchMedia?.('(prefers-color-scheme: dark)').addEventListener?.('change', () => {
      if (this.theme === 'system') applyTheme('system');
    });
    setUnauthorizedHandler(() => this.expired());
  }

  async init(): Promise<void> {
    applyTheme(this.theme);
    try {
      this.config = await auth.config();
    } catch {
      this.config = null;
    }
    try {
      const { user } = await auth.me();
      this.setUser(user);
      this.offline = false;
    } catch (e) {
      this.user = null;
      // Only an HTTP answer means "signed out"; no answer at all means offline.
      this.offline = !(e instanceof ApiError);
    }
    this.ready = true;
  }

  /** Try the server again (the offline screen's button, or the browser going online). */
  async retry(): Promise<void> {
    if (!this.offline) return;
    await this.init();
  }

  setUser(user: User | null): void {
    this.user = user;
    const t = user?.preferences?.theme;
    if (t === 'light' || t === 'dark' || t === 'system') this.setThemeLocal(t);
  }

  setThemeLocal(t: Theme): void {
    this.theme = t;
    applyTheme(t);
    try {
      localStorage.setItem(THEME_KEY, t);
    } catch {
      /* ignore */
    }
  }

  async setTheme(t: Theme): Promise<void> {
    this.setThemeLocal(t);
    if (this.user) {
      const { user } = await me.update({ preferences: { ...(this.user.preferences ?? {}), theme: t } });
      this.user = user;
    }
  }

  /** A 401 from any API call: go to sign-in with a message. */
  expired(): void {
    if (!this.user) return;
    this.user = null;
    this.flash = 'Your session expired. Please sign in again.';
    const here = location.pathname;
    router.navigate(here.startsWith('/login') ? '/login' : `/login?next=${encodeURIComponent(here)}`, { replace: true });
  }

  async logout(): Promise<void> {
    try {
      await auth.logout();
    } catch {
      /* already signed out */
    }
    this.user = null;
    this.flash = 'You have been signed out.';
    router.navigate('/login');
  }
}

export const session = new Session();
