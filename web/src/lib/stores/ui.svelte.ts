class UI {
  /** Sidebar drawer open (small screens). */
  sidebarOpen = $state(false);
  /** Sidebar collapsed (large screens). */
  sidebarCollapsed = $state(false);
  searchFocusTick = $state(0);
  helpOpen = $state(false);
}
export const ui = new UI();

export const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
export const modKey = isMac ? '⌘' : 'Ctrl';
