// Minimal history-API router.
export type Route =
  | { name: 'home' }
  | { name: 'chat'; id: string }
  | { name: 'settings'; tab: string }
  | { name: 'admin'; tab: string }
  | { name: 'assistants' }
  | { name: 'assistant'; id: string }
  | { name: 'assistantLink'; token: string }
  | { name: 'projects' }
  | { name: 'project'; id: string }
  | { name: 'login' }
  | { name: 'signup' };

export function parseRoute(pathname: string): Route {
  const parts = pathname.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  switch (parts[0]) {
    case 'c':
      return parts[1] ? { name: 'chat', id: parts[1] } : { name: 'home' };
    case 'settings':
      return { name: 'settings', tab: parts[1] || 'general' };
    case 'admin':
      return { name: 'admin', tab: parts[1] || 'users' };
    case 'assistants':
      if (parts[1] === 'link' && parts[2]) return { name: 'assistantLink', token: parts[2] };
      return parts[1] ? { name: 'assistant', id: parts[1] } : { name: 'assistants' };
    case 'projects':
      return parts[1] ? { name: 'project', id: parts[1] } : { name: 'projects' };
    case 'login':
      return { name: 'login' };
    case 'signup':
      return { name: 'signup' };
    default:
      return { name: 'home' };
  }
}

class Router {
  route = $state<Route>(parseRoute(typeof location !== 'undefined' ? location.pathname : '/'));

  constructor() {
    if (typeof window !== 'undefined') {
      window.addEventListener('popstate', () => {
        this.route = parseRoute(location.pathname);
      });
    }
  }

  navigate(path: string, opts: { replace?: boolean } = {}): void {
    if (location.pathname + location.search === path) {
      this.route = parseRoute(location.pathname);
      return;
    }
    if (opts.replace) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    this.route = parseRoute(new URL(path, location.origin).pathname);
  }
}

export const router = new Router();

export function chatPath(id: string): string {
  return `/c/${encodeURIComponent(id)}`;
}

export function assistantPath(id: string): string {
  return `/assistants/${encodeURIComponent(id)}`;
}

export function projectPath(id: string): string {
  return `/projects/${encodeURIComponent(id)}`;
}
