// Kubernetes' timestamps (metav1.Time): RFC 3339 in whole seconds, as Go's encoder writes them.

/** `2026-12-04T19:08:19Z` for a moment given as milliseconds since the epoch or a Date (the fraction is dropped). */
export function kubeTime(at: number | Date = Date.now()): string {
  const ms = typeof at === 'number' ? at : at.getTime();
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
